"""Shared plumbing of the stage entry points."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def parser(description: str, *cell_axes: str) -> argparse.ArgumentParser:
    """An argument parser with ``--params`` and one required option per cell axis.

    ``--params`` is the stage's spec (``data/params/<stage>/<cell>.json``: what dvc.yaml
    passes), the folder ``split_params`` wrote, or a params.yaml file (sliced in memory); see
    :func:`cliprobe.config.stage_params.read_params`.
    """
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--params", type=Path, default=Path("params.yaml"),
                       help="the stage's spec, the split folder or a params.yaml file")
    for axis in cell_axes:
        parse.add_argument(f"--{axis}", required=True)
    return parse


def setup_logging() -> None:
    """Plain log lines on stderr (DVC shows them under the stage)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("cliprobe").setLevel(logging.INFO)
