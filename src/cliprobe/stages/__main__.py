"""``python -m cliprobe.stages <stage> [options]``: run one pipeline stage (what dvc.yaml runs).

A stage of one model's cell (``embed``, ``classifier``, ``score`` with ``--model`` and the
params split ``--params data/params``) is handed to that model's warm worker
(:mod:`cliprobe.worker`) when one can take it, and runs in this process otherwise; other
stages always run here. Either way the outputs are the same bytes.

Only the standard library is imported before that decision, so a stage handed to a worker
costs an interpreter start, not an import of torch.
"""

from __future__ import annotations

import json
import os
import sys
import time

from cliprobe.stages import STAGES, run_stage

#: Append one JSON line per stage command (stage, argv, start, end, where it ran) to this file:
#: how the benchmarks separate stage time from DVC's own.
TIMES_ENV = "CLIPROBE_STAGE_TIMES"


def _process_start() -> float:
    """When this process started (wall clock), interpreter start-up included where known.

    On Linux from ``/proc/self/stat`` and the time since boot, to the clock tick (10 ms).
    Not psutil's ``create_time()``: it adds the start to the boot time in whole seconds, and
    came out 0.78 s early on every process here, which summed over a 200-stage sweep to
    minutes of "stage time" that DVC had spent.
    """
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in STAGES:
        print(f"usage: python -m cliprobe.stages {{{','.join(STAGES)}}} [options]",
              file=sys.stderr)
        raise SystemExit(2)
    stage, rest = args[0], args[1:]
    from cliprobe.worker.client import delegate

    code = delegate(stage, rest)
    where = "worker" if code is not None else "process"
    if code is None:
        code = run_stage(stage, rest)
    times = os.environ.get(TIMES_ENV)
    if times:
        with open(times, "a") as out:
            out.write(json.dumps({"stage": stage, "argv": rest, "start": _process_start(),
                                  "end": time.time(), "where": where, "code": code}) + "\n")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
