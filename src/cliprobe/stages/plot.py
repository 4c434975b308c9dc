"""Stage plot: seed 001's figures and the heatmap, from the aggregate tables, into plots/figures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import load_params
from cliprobe.errors import exit_on_user_error
from cliprobe.io.atomic import atomic_path
from cliprobe.plots import seed001
from cliprobe.stages._common import parser

FIGURES = paths.PLOTS / "figures"


def save(figure: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    params = load_params(args.params)
    order = [paths.CLEAN, *params.manipulation]
    cells = pd.read_csv(paths.METRICS / "cells.csv")
    per_class = pd.read_csv(paths.PLOTS / "per_class.csv", dtype={"class": str})
    staging = FIGURES.with_name(".figures.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    written = 0
    for model in params.model:
        model_cells = cells[cells["model"] == model]
        random = bool(model_cells["random_weights"].any())
        for dataset in params.dataset:
            rows = per_class[(per_class["model"] == model) & (per_class["dataset"] == dataset)]
            title = f"{model} on {dataset}"
            for kind, draw in (("hist", seed001.histogram), ("box", seed001.box_plot),
                               ("class_bars", seed001.class_bars)):
                save(draw(rows, order, title, random), staging / f"{kind}_{model}_{dataset}.png")
                written += 1
        head = model_cells[model_cells["metric"] == seed001.METRIC]
        matrix = head.pivot(index="dataset", columns="manipulation", values="value")[order]
        save(seed001.heatmap(matrix, f"{model}: seed 001 accuracy", random),
             staging / f"heatmap_{model}.png")
        written += 1
    shutil.rmtree(FIGURES, ignore_errors=True)
    staging.rename(FIGURES)
    print(f"plot: {written} figures -> {FIGURES}", file=sys.stderr)


if __name__ == "__main__":
    main()
