"""Shared plumbing of the stage entry points."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cliprobe.config.loading import load_params
from cliprobe.config.schema import Params
from cliprobe.errors import ConfigError


def parser(description: str, *cell_axes: str) -> argparse.ArgumentParser:
    """An argument parser with ``--params`` and one required option per cell axis."""
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--params", type=Path, default=Path("params.yaml"))
    for axis in cell_axes:
        parse.add_argument(f"--{axis}", required=True)
    return parse


def load_cell_params(params_path: Path, **cell: str) -> Params:
    """Validate params.yaml and check the cell's names are selected in it."""
    params = load_params(params_path)
    groups = {"model": params.model, "dataset": params.dataset,
              "manipulation": params.manipulation}
    for axis, name in cell.items():
        if axis == "manipulation" and name == "original":
            continue
        if name not in groups[axis]:
            raise ConfigError(
                f"{axis} '{name}' is not selected in {params_path}; selected: "
                f"{', '.join(groups[axis]) or 'none'} (compose conf/ again or fix the stage)"
            )
    return params


def setup_logging() -> None:
    """Plain log lines on stderr (DVC shows them under the stage)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("cliprobe").setLevel(logging.INFO)
