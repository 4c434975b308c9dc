"""Compose ``conf/`` into ``params.yaml`` exactly as DVC's Hydra integration does.

DVC composes only on ``dvc exp run``; ``make repro`` calls :func:`compose_params` so that plain
``dvc repro`` runs the same configuration (DVC_HYDRA.md: the two give byte-identical files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cliprobe.errors import ConfigError


def compose_params(
    config_dir: str | Path = "conf",
    overrides: Sequence[str] = (),
    config_name: str = "config",
) -> dict[str, Any]:
    """Compose the Hydra config in ``config_dir`` with ``overrides`` into a plain dict."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from cliprobe.config.cell_shards import register_resolver

    register_resolver()  # conf/config.yaml's cell_shards (DVC's compose: hydra_plugins/)
    conf = Path(config_dir).resolve()
    if not conf.is_dir():
        raise ConfigError(f"config folder {conf} does not exist")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base=None):
            cfg = compose(config_name=config_name, overrides=list(overrides))
            OmegaConf.resolve(cfg)
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as error:
        # Hydra's message already lists the available options; keep it to one sentence.
        message = " ".join(str(error).split())
        raise ConfigError(
            f"cannot compose conf/ with overrides {list(overrides)}: {message}"
        ) from None
    finally:
        GlobalHydra.instance().clear()


def to_yaml(params: dict[str, Any]) -> str:
    """Serialise params the way DVC writes ``params.yaml`` (OmegaConf's YAML)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(params))
