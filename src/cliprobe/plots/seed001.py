"""Seed 001's figures: per-class accuracy histogram, box plot and per-class bars, plus the
dataset x manipulation heatmap. Pure functions from tables to matplotlib figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cliprobe.plots import with_random_label

METRIC = "seed001_accuracy"
MAX_CLASS_BARS = 60


def histogram(per_class: pd.DataFrame, order: list[str], title: str, random: bool) -> Figure:
    """Distribution of per-class accuracy, one translucent histogram per manipulation."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    bins = np.linspace(0, 1, 21)
    for manipulation in order:
        values = per_class.loc[per_class["manipulation"] == manipulation, METRIC]
        axes.hist(values, bins=bins, alpha=0.45, label=manipulation)
    axes.set_xlabel("per-class accuracy (seed 001, L2 < t)")
    axes.set_ylabel("classes")
    axes.legend()
    axes.set_title(with_random_label(title, random))
    figure.tight_layout()
    return figure


def box_plot(per_class: pd.DataFrame, order: list[str], title: str, random: bool) -> Figure:
    """Per-class accuracy by manipulation, as seed 001's box plot."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    data = [per_class.loc[per_class["manipulation"] == m, METRIC].to_numpy() for m in order]
    axes.boxplot(data, tick_labels=order, showmeans=True)
    axes.set_ylabel("per-class accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(with_random_label(title, random))
    figure.tight_layout()
    return figure


def class_bars(per_class: pd.DataFrame, order: list[str], title: str, random: bool) -> Figure:
    """Mean accuracy of each class, grouped bars per manipulation (first 60 classes)."""
    table = per_class.pivot_table(index="class", columns="manipulation", values=METRIC)
    table = table[[m for m in order if m in table.columns]].iloc[:MAX_CLASS_BARS]
    width = max(7.0, 0.35 * len(table) * max(1, len(order)) / 2)
    figure, axes = plt.subplots(figsize=(min(width, 30.0), 4.8))
    table.plot.bar(ax=axes, width=0.8)
    axes.set_ylabel("per-class accuracy")
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("")
    axes.set_title(with_random_label(title, random))
    figure.tight_layout()
    return figure


def heatmap(matrix: pd.DataFrame, title: str, random: bool, metric: str = METRIC) -> Figure:
    """Annotated dataset x manipulation heatmap of one metric."""
    return heatmaps({metric: matrix}, title, random)


def heatmaps(matrices: dict[str, pd.DataFrame], title: str, random: bool) -> Figure:
    """One annotated dataset x manipulation panel per metric (values in [0, 1]; a dataset
    without the metric, e.g. caption recalls on a class dataset, is left out of its panel)."""
    panels = {metric: matrix.dropna(how="all") for metric, matrix in matrices.items()}
    panels = {metric: matrix for metric, matrix in panels.items() if not matrix.empty}
    if not panels:
        panels = dict(matrices)
    width = max(1.6 + 1.3 * m.shape[1] for m in panels.values())
    heights = [1.0 + 0.6 * max(1, m.shape[0]) for m in panels.values()]
    figure, axes_list = plt.subplots(len(panels), 1, figsize=(width, 0.6 + sum(heights)),
                                     gridspec_kw={"height_ratios": heights}, squeeze=False)
    for axes, (metric, matrix) in zip(axes_list[:, 0], panels.items(), strict=True):
        values = matrix.to_numpy(dtype=float)
        image = axes.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        axes.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
        axes.set_yticks(range(matrix.shape[0]), matrix.index)
        for (row, col), value in np.ndenumerate(values):
            axes.text(col, row, "–" if np.isnan(value) else f"{value:.3f}", ha="center",
                      va="center", color="white" if value < 0.6 else "black", fontsize=9)
        figure.colorbar(image, ax=axes)
        axes.set_title(metric, fontsize=9)
    figure.suptitle(with_random_label(title, random), fontsize=10)
    figure.tight_layout()
    return figure
