"""The per-command time log the benchmarks use to separate stage time from DVC's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def test_a_stage_commands_logged_start_is_when_its_process_started(tmp_path: Path) -> None:
    log = tmp_path / "times.jsonl"
    env = {**os.environ, "CLIPROBE_STAGE_TIMES": str(log)}
    launched = time.time()
    # a stage that fails at once still logs its span
    subprocess.run([sys.executable, "-m", "cliprobe.stages", "aggregate", "--params",
                    str(tmp_path / "absent.json")], cwd=tmp_path, env=env,
                   capture_output=True, check=False)
    finished = time.time()
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    # the process cannot start before it was launched (10 ms clock ticks, and slack)
    assert launched - 0.05 <= record["start"] <= record["end"] <= finished
