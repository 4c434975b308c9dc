"""The change figure: every metric with a better direction (rows) under every manipulation
(columns) of one model × dataset, coloured by the direction-aware change against ``original``
(the PNG twin of the report's interactive chart, for papers and ``dvc plots``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap, TwoSlopeNorm
from matplotlib.figure import Figure

from cliprobe.metrics.changes import change_cells
from cliprobe.plots import with_random_label

#: Worse, unchanged, better: the colours of this figure and of the report's chart.
DIVERGING = ("#c0392b", "#f7f7f7", "#1a9850")


def change_figure(changes: pd.DataFrame, manipulations: list[str], title: str,
                  random: bool) -> Figure | None:
    """The figure of one pair's :func:`cliprobe.metrics.changes.change_table` rows; None when
    no metric with a better direction changed under ``manipulations``."""
    cells = change_cells(changes[changes["manipulation"].isin(manipulations)])
    if cells.empty:
        return None
    rows = list(dict.fromkeys(cells["metric"]))
    columns = [m for m in manipulations if m in set(cells["manipulation"])]
    effect = cells.pivot(index="metric", columns="manipulation", values="effect")
    text = cells.pivot(index="metric", columns="manipulation", values="text")
    effect, text = effect.reindex(index=rows, columns=columns), text.reindex(
        index=rows, columns=columns)
    limit = max(float(np.nanmax(np.abs(effect.to_numpy()))), 1e-9)
    figure, axes = plt.subplots(figsize=(4.0 + 1.0 * len(columns), 1.2 + 0.32 * len(rows)))
    image = axes.imshow(effect.to_numpy(dtype=float), aspect="auto",
                        cmap=LinearSegmentedColormap.from_list("change", list(DIVERGING)),
                        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
    for i in range(len(rows)):
        for j in range(len(columns)):
            label = text.iloc[i, j]
            if isinstance(label, str):
                axes.text(j, i, label, ha="center", va="center", fontsize=7)
    axes.set_xticks(range(len(columns)), columns, rotation=35, ha="left")
    axes.xaxis.tick_top()
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    colour_bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    colour_bar.set_label("change against original (better +; points for shares)", fontsize=7)
    heading = f"{title}\nchange against original (* = paired test significant)"
    axes.set_title(with_random_label(heading, random),
                   fontsize=9, pad=12)
    figure.tight_layout()
    return figure
