"""`cliprobe workers` lists and stops this user's workers (by their pid files)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from cliprobe.cli import app
from cliprobe.worker.control import list_workers, stop_workers


def test_workers_are_listed_and_stopped(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # short: a socket path in it must fit Linux's 107 bytes (pytest-xdist's tmp_path does not)
    folder = Path(tempfile.mkdtemp(prefix="cw-"))
    monkeypatch.setenv("CLIPROBE_WORKER_DIR", str(folder))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               start_new_session=True)
    (folder / "abc.pid").write_text(str(sleeper.pid))
    (folder / "gone.pid").write_text("999999999")  # a worker that already stopped
    try:
        assert [w.key for w in list_workers(folder)] == ["abc"]
        listed = CliRunner().invoke(app, ["workers"])
        assert listed.exit_code == 0 and f"pid {sleeper.pid}" in listed.output
        stopped = CliRunner().invoke(app, ["workers", "--stop"])
        assert stopped.exit_code == 0 and "stopped 1 workers" in stopped.output
        assert sleeper.wait(timeout=30) != 0
        assert stop_workers(folder) == 0
    finally:
        sleeper.kill()
        shutil.rmtree(folder, ignore_errors=True)
