"""Helpers for tests and benchmarks: a throw-away copy of this project run through real DVC.

Not used by the pipeline itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cliprobe.config.compose import compose_params, to_yaml

#: A stage DVC ran, by its name (a sub-pipeline's stage without its ``pipelines/.../dvc.yaml:``).
RAN = re.compile(r"Running stage '(?:[^':]*dvc\.yaml:)?([^']+)'")
PROJECT_FILES = ("conf", "src", "dvc.yaml", "pipelines", "hydra_plugins", ".dvcignore",
                 ".gitignore")


def repo_root() -> Path:
    """The source checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, check: bool = True) -> str:
    """Run a command with the venv's binaries first on PATH; return stdout + stderr."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "CLIPROBE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
    return output


def make_project(root: Path, source: Path | None = None) -> Path:
    """Copy conf/, src/ and the pipeline files into ``root``; make it a git + DVC repository."""
    source = source or repo_root()
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        path = source / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "dvc.lock")  # a fresh pipeline
            shutil.copytree(path, root / name, ignore=ignore)
        else:
            shutil.copy(path, root / name)
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "config", "core.analytics", "false"], root)
    run(["dvc", "config", "hydra.enabled", "true"], root)
    return root


def compose_into(project: Path, overrides: list[str]) -> None:
    """Write the composition of the project's conf/ with ``overrides`` to its params.yaml."""
    (project / "params.yaml").write_text(to_yaml(compose_params(project / "conf", overrides)))


def repro(project: Path, overrides: list[str] | None = None) -> tuple[set[str], float, str]:
    """(stages that ran, seconds, output) of `dvc repro`, after composing ``overrides``."""
    if overrides is not None:
        compose_into(project, overrides)
    started = time.perf_counter()
    output = run(["dvc", "repro"], project)
    return set(RAN.findall(output)), time.perf_counter() - started, output
