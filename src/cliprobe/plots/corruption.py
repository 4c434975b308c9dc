"""ImageNet-C figures: metric-vs-severity curves and the corruption × severity heatmap.

Pure functions from plots/severity.csv rows (one row per model, dataset, construction,
corruption and severity; severity 0 is the clean ``original`` cell; metric columns with
``_ci_low`` / ``_ci_high`` intervals) to matplotlib figures.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
from cliprobe.plots import with_random_label

#: Metric-vs-severity panels drawn when present (the error CE uses, then seed 001's score).
CURVE_METRICS: tuple[str, ...] = ("zeroshot_error", "seed001_accuracy")
HEATMAP_METRIC = "zeroshot_error"
#: Interval bands are drawn only when a panel has at most this many lines (beyond, they hide
#: the lines; the intervals are in plots/severity.csv and metrics/corruptions.csv).
MAX_BANDS = 6


def ordered_corruptions(names: pd.Series | list[str]) -> list[str]:
    """Distinct corruption names in SPEC §5 order (unknown names last, alphabetically)."""
    distinct = set(names)
    known = [name for name in ALL_CORRUPTIONS if name in distinct]
    return known + sorted(distinct - set(known))


def _colours(count: int) -> list[tuple[float, float, float, float]]:
    """Distinct colours: tab10 for up to 10 lines, tab20 (pairs of shades) beyond."""
    size = 10 if count <= 10 else 20
    cmap = plt.get_cmap(f"tab{size}")
    return [cmap(i % size) for i in range(count)]


def _severity_axis(axes: plt.Axes) -> None:
    axes.set_xticks([0, *SEVERITIES], ["clean", *map(str, SEVERITIES)])
    axes.set_xlabel("severity")
    axes.set_xlim(-0.2, max(SEVERITIES) + 0.2)


def _line(axes: plt.Axes, rows: pd.DataFrame, metric: str, label: str, colour: object,
          dashed: bool, band: bool) -> None:
    rows = rows.sort_values("severity")
    x = rows["severity"].to_numpy(dtype=float)
    y = rows[metric].to_numpy(dtype=float)
    axes.plot(x, y, marker="o", markersize=3.5, linewidth=1.4, color=colour, label=label,
              linestyle="--" if dashed else "-")
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if band and low in rows and high in rows:
        axes.fill_between(x, rows[low].to_numpy(dtype=float), rows[high].to_numpy(dtype=float),
                          color=colour, alpha=0.08, linewidth=0)


def severity_curves(rows: pd.DataFrame, heading: str, random: bool,
                    metrics: tuple[str, ...] = CURVE_METRICS) -> Figure:
    """One panel per metric, one line per corruption (extras dashed), interval bands when few."""
    shown = [m for m in metrics if m in rows.columns] or [metrics[0]]
    corruptions = ordered_corruptions(rows["corruption"])
    figure, axes_row = plt.subplots(1, len(shown), figsize=(5.2 * len(shown) + 1.8, 4.8),
                                    squeeze=False, layout="constrained")
    for axes, metric in zip(axes_row[0], shown, strict=True):
        for corruption, colour in zip(corruptions, _colours(len(corruptions)), strict=True):
            _line(axes, rows[rows["corruption"] == corruption], metric, corruption, colour,
                  corruption in EXTRA_CORRUPTIONS, len(corruptions) <= MAX_BANDS)
        _severity_axis(axes)
        axes.set_ylabel(metric)
        axes.set_ylim(-0.02, 1.02)
        axes.grid(alpha=0.3)
    handles, labels = axes_row[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    figure.suptitle(with_random_label(heading, random))
    return figure


def model_curves(rows: pd.DataFrame, heading: str, random: bool,
                 metric: str = CURVE_METRICS[0]) -> Figure:
    """Small multiples: one panel per corruption, one line per model."""
    corruptions = ordered_corruptions(rows["corruption"])
    models = list(dict.fromkeys(rows["model"]))
    columns = min(5, len(corruptions))
    lines = -(-len(corruptions) // columns)
    figure, grid = plt.subplots(lines, columns, figsize=(2.8 * columns + 1.6, 2.4 * lines + 0.9),
                                squeeze=False, sharex=True, sharey=True, layout="constrained")
    for axes, corruption in zip(grid.flat, corruptions, strict=False):
        for model, colour in zip(models, _colours(len(models)), strict=True):
            chosen = rows[(rows["corruption"] == corruption) & (rows["model"] == model)]
            if not chosen.empty:
                _line(axes, chosen, metric, model, colour, False, len(models) <= MAX_BANDS)
        axes.set_title(corruption, fontsize=9)
        _severity_axis(axes)
        axes.set_xlabel("")
        axes.set_ylim(-0.02, 1.02)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(corruptions):]:
        axes.set_visible(False)
    for axes in grid[:, 0]:
        axes.set_ylabel(metric, fontsize=8)
    handles, labels = grid.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    figure.suptitle(with_random_label(heading, random))
    return figure


def severity_matrix(rows: pd.DataFrame, metric: str = HEATMAP_METRIC) -> pd.DataFrame:
    """Corruption (rows, SPEC order) × severity 1-5 (columns) matrix of ``metric``."""
    corrupted = rows[rows["severity"] > 0]
    matrix = corrupted.pivot_table(index="corruption", columns="severity", values=metric,
                                   aggfunc="first")
    return matrix.reindex(index=ordered_corruptions(corrupted["corruption"]),
                          columns=[s for s in SEVERITIES if s in matrix.columns])


def severity_heatmap(rows: pd.DataFrame, heading: str, random: bool,
                     metric: str = HEATMAP_METRIC) -> Figure:
    """Annotated corruption × severity heatmap of ``metric`` (missing cells blank)."""
    matrix = severity_matrix(rows, metric)
    values = matrix.to_numpy(dtype=float)
    figure, axes = plt.subplots(figsize=(2.8 + 0.9 * matrix.shape[1],
                                         1.3 + 0.36 * matrix.shape[0]))
    image = axes.imshow(np.ma.masked_invalid(values), vmin=0, vmax=1, cmap="magma_r",
                        aspect="auto")
    axes.set_xticks(range(matrix.shape[1]), [str(s) for s in matrix.columns])
    axes.set_yticks(range(matrix.shape[0]), matrix.index)
    axes.set_xlabel("severity")
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if value > 0.55 else "black")
    figure.colorbar(image, ax=axes, label=metric)
    axes.set_title(with_random_label(heading, random), fontsize=10)
    figure.tight_layout()
    return figure
