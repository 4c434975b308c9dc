"""Stage entry points, one module per DVC stage: ``python -m cliprobe.stages <stage> ...``.

Each is thin: parse the cell, read its own params (:mod:`cliprobe.config.stage_params`), call
library code, write outputs atomically. ``python -m cliprobe.stages`` (see ``__main__``) hands a
model's stages to that model's warm worker (:mod:`cliprobe.worker`) when it can, and runs them
here otherwise; ``python -m cliprobe.stages.<stage>`` always runs in the current process.

This module stays free of heavy imports: it is imported before every stage command.
"""

from __future__ import annotations

import importlib

#: Stage modules, in pipeline order (``embed`` also runs the manipulate stages, ``score`` the
#: score_original ones).
STAGES = ("scan", "split_params", "fetch", "embed", "classifier", "captions", "score",
          "saliency", "aggregate", "words", "plot", "report")


def exit_code(code: object) -> int:
    """The process exit status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def run_stage(stage: str, argv: list[str]) -> int:
    """Run stage module ``stage`` with ``argv`` in this process; its exit status."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    module = importlib.import_module(f"cliprobe.stages.{stage}")
    try:
        module.main(argv)
    except SystemExit as stop:
        return exit_code(stop.code)
    return 0
