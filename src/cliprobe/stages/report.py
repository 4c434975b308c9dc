"""Stage report: plots/report.html, one self-contained page of the run's results."""

from __future__ import annotations

import sys

from cliprobe import paths
from cliprobe.config.stage_params import read_params
from cliprobe.errors import exit_on_user_error
from cliprobe.io.atomic import write_text
from cliprobe.report.collect import collect
from cliprobe.report.render import render
from cliprobe.stages._common import parser

REPORT = paths.PLOTS / "report.html"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    run = collect(read_params("report", args.params))
    write_text(REPORT, render(run))
    print(f"report: {len(run.cells)} metric values, "
          f"{sum(len(f) for f in run.figures.values())} figures -> {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
