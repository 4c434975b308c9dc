"""Why a word wins, in figures: the object x written word matrix (Distill style) and attack
outcome against word / object proximity."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cliprobe.plots import with_random_label
from cliprobe.proximity.pairs import BLANK

#: The reference column holding each object's own name written on it.
OWN_NAME = "(own name)"
#: Larger grids (a synthetic attack on ImageNet) are left to plots/word_pairs.csv.
MAX_OBJECTS, MAX_WORDS = 40, 60
MEASURE_LABELS = {"text_cosine": "text-space cosine (object, word)",
                  "wordnet_wup": "WordNet Wu-Palmer similarity",
                  "wordnet_path": "WordNet path similarity"}


def matrix_columns(pairs: pd.DataFrame) -> list[str]:
    """``blank``, the own-name reference column, then every other written word (sorted)."""
    written = pairs[pairs["condition"] != "matching_text"]
    words = sorted(set(written["word"]) - {BLANK})
    columns = [BLANK] if (pairs["word"] == BLANK).any() else []
    if (pairs["condition"] == "matching_text").any():
        columns.append(OWN_NAME)
    return columns + words


def matrix_values(pairs: pd.DataFrame, value: str) -> pd.DataFrame:
    """objects x columns of ``value`` (NaN where no photo); matching words in ``OWN_NAME``."""
    table = pairs.copy()
    table["column"] = np.where(table["condition"] == "matching_text", OWN_NAME, table["word"])
    wide = table.pivot_table(index="object", columns="column", values=value, aggfunc="mean",
                             dropna=False)
    return wide.reindex(columns=matrix_columns(pairs))


def fits_a_matrix(pairs: pd.DataFrame) -> bool:
    """True when the grid is small enough to draw."""
    return pairs["object"].nunique() <= MAX_OBJECTS and pairs["word"].nunique() <= MAX_WORDS


def _heatmap(axes: plt.Axes, values: pd.DataFrame, success: pd.DataFrame, title: str) -> None:
    data = values.to_numpy(dtype=float)
    image = axes.imshow(np.ma.masked_invalid(data), cmap="magma", vmin=0, vmax=1,
                        aspect="auto")
    axes.set_xticks(range(values.shape[1]), values.columns, rotation=60, ha="right", fontsize=7)
    axes.set_yticks(range(values.shape[0]), values.index, fontsize=7)
    axes.set_title(title, fontsize=9)
    for (row, column), value in np.ndenumerate(data):
        if not math.isnan(value):
            axes.text(column, row, f"{value * 100:.0f}", ha="center", va="center", fontsize=5.5,
                      color="white" if value < 0.6 else "black")
    flipped = success.reindex(index=values.index, columns=values.columns).to_numpy(dtype=float)
    for (row, column), rate in np.ndenumerate(flipped):
        if not math.isnan(rate) and rate >= 0.5:
            axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False,
                                     ec="#00c2ff", lw=1.4))
    plt.colorbar(image, ax=axes, fraction=0.03, pad=0.02)


def object_word_matrix(pairs: pd.DataFrame, title: str, random: bool) -> Figure:
    """Two panels, rows = objects, columns = written words (``blank`` and the object's own name
    as references): p(true object) and p(written word), in percent; a blue frame where the
    prediction is the written word (attack success >= 0.5 over the pair's images)."""
    success = matrix_values(pairs, "attack_success")
    width = max(8.0, 0.32 * len(matrix_columns(pairs)) * 2 + 3)
    height = max(3.0, 0.32 * pairs["object"].nunique() + 2)
    figure, axes = plt.subplots(1, 2, figsize=(width, height))
    _heatmap(axes[0], matrix_values(pairs, "p_object"), success, "p(true object), %")
    _heatmap(axes[1], matrix_values(pairs, "p_word"), success, "p(written word), %")
    heading = f"{title}\nframe: predicted as the written word"
    figure.suptitle(with_random_label(heading, random), fontsize=10)
    figure.tight_layout()
    return figure


def _format_rho(row: pd.Series) -> str:
    if row is None or pd.isna(row.get("rho")):
        return "rho n/a"
    interval = ("" if pd.isna(row.get("ci_low")) else
                f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]")
    return f"Spearman rho {row['rho']:.2f}{interval}, n = {int(row['n_pairs'])}"


def proximity_figure(pairs: pd.DataFrame, correlations: pd.DataFrame, title: str,
                     random: bool, outcome: str = "p_word") -> Figure:
    """``outcome`` (p(word) by default) against each proximity measure, one panel each,
    over the pairs where the word attacks; Spearman's rho with its interval in the title."""
    attacks = pairs[(pairs["condition"] == "typographic_attack") & pairs[outcome].notna()]
    measures = [m for m in MEASURE_LABELS if m in pairs.columns]
    figure, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8),
                                squeeze=False)
    for ax, measure in zip(axes[0], measures, strict=True):
        found = correlations[(correlations["measure"] == measure)
                             & (correlations["outcome"] == outcome)]
        row = found.iloc[0] if len(found) else None
        shown = attacks[attacks[measure].notna()]
        source = "" if row is None else str(row.get("source", ""))
        lexicon = (f"\n({source.split(' (')[0]})"
                   if measure.startswith("wordnet") and source.startswith("wn ") else "")
        ax.set_xlabel(MEASURE_LABELS[measure] + lexicon, fontsize=8)
        ax.set_ylabel(outcome.replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=7)
        if shown.empty:
            ax.text(0.5, 0.5, "no values" + (f"\n{source[:90]}" if source else ""),
                    ha="center", va="center", fontsize=7, wrap=True, transform=ax.transAxes)
            ax.set_title(MEASURE_LABELS[measure].split(" (")[0], fontsize=8)
            continue
        ax.scatter(shown[measure], shown[outcome], s=14, alpha=0.7, color="#d1495b")
        if outcome in ("p_word", "attack_success"):
            ax.set_ylim(-0.03, 1.03)
        for entry in shown.nlargest(3, outcome).itertuples():
            ax.annotate(f"{entry.object}/{entry.word}", (getattr(entry, measure),
                                                          getattr(entry, outcome)),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_title(_format_rho(row), fontsize=8)
    heading = title
    figure.suptitle(with_random_label(heading, random), fontsize=10)
    figure.tight_layout()
    return figure
