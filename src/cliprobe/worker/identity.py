"""Which worker may run a stage: a key over everything that could make its results differ.

Standard library only: the stage command computes it before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import stat
import sys
from pathlib import Path
from typing import Any

#: Environment variables that change how models load or compute (read when a worker starts).
ENV_PREFIXES = ("CUDA", "CLIPROBE_MODEL", "CLIPROBE_OFFLINE", "HF_", "HUGGINGFACE", "TORCH",
                "PYTORCH", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "NUMBA_", "PYTHONHASHSEED",
                "PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH")
DIR_ENV = "CLIPROBE_WORKER_DIR"
#: Longest path an AF_UNIX socket can bind on Linux (sun_path: 108 bytes with the NUL).
MAX_SOCKET_PATH = 107


def package_dir() -> Path:
    """The folder of the cliprobe package this process imported."""
    return Path(__file__).resolve().parents[1]


def code_fingerprint(root: Path | None = None) -> str:
    """sha256 over every file of the cliprobe package (sources, configs, data files)."""
    root = root or package_dir()
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def environment_fingerprint() -> dict[str, Any]:
    """The interpreter, its installed packages (site folders' mtimes), CPUs and the
    environment variables that matter: a worker started elsewhere must not be reused."""
    folders = {}
    for entry in [*site.getsitepackages(), site.getusersitepackages()]:
        try:
            folders[entry] = os.stat(entry).st_mtime_ns  # changes when packages change
        except OSError:
            continue
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 0
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    return {"executable": sys.executable, "version": sys.version, "path": folders,
            "cpus": cpus, "env": env, "uid": os.getuid() if hasattr(os, "getuid") else None}


def worker_key(model: str, model_params: dict[str, Any], device: str | None) -> str:
    """The key of the worker for ``model`` (its effective params) on ``device``."""
    payload = {"code": code_fingerprint(), "package": str(package_dir()),
               "environment": environment_fingerprint(), "model": model,
               "model_params": model_params, "device": device}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def socket_dir() -> Path | None:
    """The private folder of this user's workers (created 0700), or None when it cannot be
    made private (then no worker is used)."""
    if not hasattr(os, "getuid"):
        return None
    configured = os.environ.get(DIR_ENV)
    if configured:
        folder = Path(configured)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "cliprobe-workers"
    else:
        folder = Path("/tmp") / f"cliprobe-workers-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o077):
        return None
    if len(str(folder / ("x" * 32 + ".sock"))) > MAX_SOCKET_PATH:
        return None
    return folder
