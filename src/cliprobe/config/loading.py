"""Load and validate ``params.yaml``, including each manipulation's own parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cliprobe.config.schema import Params
from cliprobe.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


def _describe(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    parts = [*(prefix.split(".") if prefix else []), *map(str, first["loc"])]
    path = ".".join(parts)
    # discriminated unions put the tag in the location; keep the path a user would type.
    # Checks across keys (model validators) name their key path in the message themselves.
    if not path:
        return str(first["msg"]).removeprefix("Value error, ")
    return f"{path}: {first['msg']}"


def validate_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping; raise :class:`ConfigError` naming the first bad key path."""
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"invalid configuration at {_describe(error)}") from None
    for name, entry in params.manipulation.items():
        manipulation_params(name, entry.function, entry.params)
    return params


def manipulation_params(name: str, function: str, params: dict[str, Any]) -> BaseModel:
    """Validate one manipulation's parameters against its registry entry's schema."""
    from cliprobe.manipulations import registry

    try:
        spec = registry.get(function)
    except KeyError as error:
        raise ConfigError(
            f"invalid configuration at manipulation.{name}.function: {error.args[0]}"
        ) from None
    try:
        return spec.params_model.model_validate(params)
    except ValidationError as error:
        raise ConfigError(
            f"invalid configuration at {_describe(error, f'manipulation.{name}')}"
        ) from None


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read ``params.yaml`` (as composed from ``conf/``) and validate it."""
    params_path = Path(path)
    if not params_path.is_file():
        raise ConfigError(
            f"{params_path} does not exist: compose it from conf/ with `cliprobe compose` "
            "(or run `make repro` / `dvc exp run`)"
        )
    raw = yaml.safe_load(params_path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{params_path} must hold a mapping of parameters")
    params = validate_params(raw)
    check_cell_shards(params, params_path)
    return params


def check_cell_shards(params: Params, params_path: Path) -> None:
    """Refuse a params file whose ``cell_shards`` (which DVC reads to make the cells' stages)
    does not hold exactly its manipulations: a cell left out would silently get no stage."""
    from cliprobe.config.cell_shards import cell_shards

    if params.cell_shards is not None and params.cell_shards != cell_shards(params.manipulation):
        raise ConfigError(
            f"{params_path}: cell_shards does not match the selected manipulations, so some "
            "cells would have no DVC stage (was it edited by hand?); compose it from conf/ "
            "(`cliprobe compose ...`, `make repro` or `dvc exp run -S ...`)")
