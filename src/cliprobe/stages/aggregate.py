"""Stage aggregate: collect the grid's cell metrics into the summary, tables and plot data.

Reads only the cells of the grid params.yaml selects (the spec's ``grid``; never globbing), so
stale cells of other models or datasets on disk cannot leak into the summary. What each output
holds is assembled by :mod:`cliprobe.metrics.summary` and
:mod:`cliprobe.metrics.corruption_summary`:

- metrics/summary.json (for `dvc metrics show/diff`): model -> dataset -> manipulation ->
  metric; with corruption cells also ``corruption_summary`` -> model -> dataset ->
  construction -> CE / relative CE per corruption, mCE, relative mCE, each with an interval;
- metrics/cells.csv: every metric of every cell with its interval;
- metrics/comparisons.csv: every non-original cell against its model × dataset's ``original``
  cell on the same images, per metric;
- metrics/seed001_table.csv (.md): seed 001's table, ``*`` where the difference from
  ``original`` is significant;
- metrics/corruptions.csv: the ImageNet-C cells (long: one row per model, dataset,
  construction, corruption, severity and metric, including the error CE is computed from);
- plots/headline.csv, plots/per_class.csv, plots/severity.csv (for `dvc plots`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.config.stage_params import load_stage_params
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path, write_json, write_text
from cliprobe.metrics import corruption_summary as cs
from cliprobe.metrics import summary as sm
from cliprobe.stages._common import parser, setup_logging


def read_cell_file(model: str, dataset: str, manipulation: str, name: str) -> Path:
    """The path of a cell's output file; a DataError naming the cell when it is missing."""
    file = paths.cell_dir(model, dataset, manipulation) / name
    if not file.is_file():
        raise DataError(f"cell {model}/{dataset}/{manipulation} has no {file}: run "
                        f"`dvc repro` (the score stage of that cell did not run)")
    return file


def load_cells(grid: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The metrics.json of every cell in the grid."""
    return [json.loads(read_cell_file(*key, "metrics.json").read_text()) for key in grid]


def read_per_image(model: str, dataset: str, manipulation: str) -> pd.DataFrame:
    """A cell's per_image.parquet (image_id, label, seed001_accuracy, own_rank, ...)."""
    return pd.read_parquet(read_cell_file(model, dataset, manipulation, "per_image.parquet"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "").parse_args(argv)
    params = load_stage_params("aggregate", args.params)
    selected = params.grid
    cells = load_cells(sm.grid(selected.model, selected.dataset, selected.manipulation))
    long = sm.long_table(cells)
    by_key = {sm.cell_key(c): c for c in cells}
    corrupted = [c for c in map(cs.corruption_cell, cells) if c is not None]
    corrupted_keys = {(c.model, c.dataset, c.manipulation) for c in corrupted}

    comparison_rows: list[dict[str, Any]] = []
    errors: dict[tuple[str, str], cs.PerImageErrors] = {}
    for model in selected.model:
        for dataset in selected.dataset:
            base = read_per_image(model, dataset, paths.CLEAN)
            base_key = f"{model}/{dataset}/{paths.CLEAN}"
            pair_errors = errors.setdefault((model, dataset), {})
            needs_errors = any((model, dataset, name) in corrupted_keys
                               for name in selected.manipulation)
            if needs_errors:
                # CE's clean error: only where corruption cells need it (a caption dataset or a
                # pooled-feature model has no zero-shot top-1)
                pair_errors[paths.CLEAN] = (base["image_id"].to_numpy(), sm.error_values(base))
            for manipulation in selected.manipulation:
                frame = read_per_image(model, dataset, manipulation)
                cell = by_key[(model, dataset, manipulation)]
                metrics = list(cell["metrics"])
                for row in sm.compare_cells(base, frame, metrics, params, base_key,
                                            f"{model}/{dataset}/{manipulation}"):
                    comparison_rows.append({"model": model, "dataset": dataset,
                                            "manipulation": manipulation, **row})
                if needs_errors and ((model, dataset, manipulation) in corrupted_keys
                                     or cs.is_clean_reference(cell)):
                    pair_errors[manipulation] = (frame["image_id"].to_numpy(),
                                                 sm.error_values(frame))
    comparisons = pd.DataFrame(comparison_rows, columns=sm.COMPARISON_COLUMNS)

    tree = sm.summary_tree(cells)
    if corrupted:
        tree["corruption_summary"] = cs.corruption_summaries(corrupted, by_key, errors, params)
    write_json(paths.METRICS / "summary.json", tree)
    write_csv(long, paths.METRICS / "cells.csv")
    write_csv(comparisons, paths.METRICS / "comparisons.csv")
    table = sm.seed001_table(long, list(selected.manipulation), sm.significant_cells(comparisons))
    write_csv(table, paths.METRICS / "seed001_table.csv")
    random = bool(long["random_weights"].any())
    write_text(paths.METRICS / "seed001_table.md", sm.seed001_markdown(table, params, random))
    corruptions = cs.corruptions_table(corrupted)
    write_csv(corruptions, paths.METRICS / "corruptions.csv")
    write_csv(cs.severity_table(corruptions, long, cs.clean_cells(corrupted, by_key)),
              paths.PLOTS / "severity.csv")
    write_csv(sm.headline_table(long), paths.PLOTS / "headline.csv")
    write_csv(sm.per_class_table(cells), paths.PLOTS / "per_class.csv")
    print(f"aggregate: {len(cells)} cells ({len(corrupted)} ImageNet-C), "
          f"{int(comparisons['significant'].sum())} of {len(comparisons)} paired comparisons "
          f"significant -> {paths.METRICS}/summary.json, cells.csv, comparisons.csv, "
          f"seed001_table.csv" + (", corruptions.csv" if corrupted else "")
          + ("  [RANDOM WEIGHTS: not findings]" if random else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
