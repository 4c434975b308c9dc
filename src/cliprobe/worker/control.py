"""List and stop this user's warm workers (``cliprobe workers``)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkerInfo:
    """One worker: its key, process id (None when gone) and log file."""

    key: str
    pid: int | None
    log: Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_workers(folder: Path) -> list[WorkerInfo]:
    """The workers of ``folder`` that still run."""
    found = []
    for pid_file in sorted(folder.glob("*.pid")):
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            found.append(WorkerInfo(pid_file.stem, pid, pid_file.with_suffix(".log")))
    return found


def stop_workers(folder: Path, timeout_s: float = 10.0) -> int:
    """Stop every worker of ``folder`` (SIGTERM, then SIGKILL); how many were running."""
    workers = list_workers(folder)
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        while _alive(worker.pid) and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.05)
        if _alive(worker.pid):  # type: ignore[arg-type]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
    return len(workers)
