"""Stage aggregate: collect the grid's cell metrics into the summary, tables and plot data.

Reads only the cells of the grid params.yaml selects (never globbing), so stale cells of other
models or datasets on disk cannot leak into the summary.

Outputs: metrics/summary.json (for `dvc metrics show/diff`), metrics/cells.csv (every metric of
every cell with its interval), metrics/seed001_table.csv (seed 001's table, one per model),
plots/headline.csv and plots/per_class.csv (for `dvc plots`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import load_params
from cliprobe.config.schema import Params
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path, write_json
from cliprobe.stages._common import parser

HEADLINE = "seed001_accuracy"


def grid(params: Params) -> list[tuple[str, str, str]]:
    """(model, dataset, manipulation) of every cell, ``original`` first for each pair."""
    manipulations = [paths.CLEAN, *params.manipulation]
    return [(m, d, x) for m in params.model for d in params.dataset for x in manipulations]


def load_cells(params: Params) -> list[dict[str, Any]]:
    """The metrics.json of every cell in the grid."""
    cells = []
    for model, dataset, manipulation in grid(params):
        file = paths.cell_dir(model, dataset, manipulation) / "metrics.json"
        if not file.is_file():
            raise DataError(f"cell {model}/{dataset}/{manipulation} has no {file}: run "
                            f"`dvc repro` (the score stage of that cell did not run)")
        cells.append(json.loads(file.read_text()))
    return cells


def long_table(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (cell, metric) with value and interval."""
    rows = []
    for cell in cells:
        key = cell["cell"]
        for metric, estimate in cell["metrics"].items():
            rows.append({"model": key["model"], "dataset": key["dataset"],
                         "manipulation": key["manipulation"], "metric": metric,
                         "value": estimate["value"], "ci_low": estimate["ci_low"],
                         "ci_high": estimate["ci_high"], "n_images": cell["n_images"],
                         "n_skipped": cell["n_skipped"],
                         "random_weights": bool(cell["provenance"].get("random_weights"))})
    return pd.DataFrame(rows)


def format_estimate(value: float, low: float, high: float) -> str:
    """``0.754 [0.721, 0.785]``."""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def seed001_table(long: pd.DataFrame, manipulations: list[str]) -> pd.DataFrame:
    """Seed 001's table: rows (model, dataset), columns manipulations, value with interval."""
    head = long[long["metric"] == HEADLINE].copy()
    head["text"] = [format_estimate(v, lo, hi)
                    for v, lo, hi in zip(head["value"], head["ci_low"], head["ci_high"],
                                         strict=True)]
    table = head.pivot(index=["model", "dataset"], columns="manipulation", values="text")
    return table[[paths.CLEAN, *manipulations]].reset_index()


def summary(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Nested model -> dataset -> manipulation -> metric -> value (what dvc metrics shows)."""
    tree: dict[str, Any] = {}
    for cell in cells:
        key = cell["cell"]
        leaf = tree.setdefault(key["model"], {}).setdefault(key["dataset"], {})
        leaf[key["manipulation"]] = {
            **{name: estimate["value"] for name, estimate in cell["metrics"].items()},
            "n_images": cell["n_images"], "n_skipped": cell["n_skipped"],
        }
    return tree


def per_class_table(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """Seed 001's per-class accuracy of every cell, long format."""
    rows = [{"model": c["cell"]["model"], "dataset": c["cell"]["dataset"],
             "manipulation": c["cell"]["manipulation"], "class": label, HEADLINE: value}
            for c in cells for label, value in c["per_class_seed001_accuracy"].items()]
    return pd.DataFrame(rows)


def write_csv(frame: pd.DataFrame, path: Any) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    params = load_params(args.params)
    cells = load_cells(params)
    long = long_table(cells)
    write_json(paths.METRICS / "summary.json", summary(cells))
    write_csv(long, paths.METRICS / "cells.csv")
    write_csv(seed001_table(long, list(params.manipulation)), paths.METRICS / "seed001_table.csv")
    head = long[long["metric"] == HEADLINE].copy()
    head["cell"] = head["model"] + "/" + head["dataset"] + "/" + head["manipulation"]
    write_csv(head[["cell", "model", "dataset", "manipulation", "value", "ci_low", "ci_high"]]
              .rename(columns={"value": HEADLINE}), paths.PLOTS / "headline.csv")
    write_csv(per_class_table(cells), paths.PLOTS / "per_class.csv")
    random = long["random_weights"].any()
    print(f"aggregate: {len(cells)} cells -> {paths.METRICS}/summary.json, cells.csv, "
          f"seed001_table.csv" + ("  [RANDOM WEIGHTS: not findings]" if random else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
