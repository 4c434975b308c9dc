"""What stage commands cost outside their work: the time log the benchmarks read, and the
imports of the stage every `dvc repro` runs."""

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


def test_the_scan_stage_that_every_repro_runs_imports_no_pandas() -> None:
    # `scan` runs on every `dvc repro`, a no-op included, and reads the params schema: pandas
    # (0.3 s here) was imported only through the schema's modules
    probe = ("import sys\nimport cliprobe.stages.scan\n"
             "print(sorted(m for m in ('pandas', 'torch', 'PIL') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
