"""The grid's cells assembled into tables: the summary tree, seed 001's table, paired comparisons.

Pure functions over the cells' ``metrics.json`` dicts and ``per_image.parquet`` tables; the
aggregate stage reads those files and writes what these functions return.

- :func:`summary_tree` is ``metrics/summary.json`` (model -> dataset -> manipulation -> metric);
- :func:`long_table` is ``metrics/cells.csv`` (every metric of every cell with its interval);
- :func:`compare_cells` gives the rows of ``metrics/comparisons.csv``: a cell against its model ×
  dataset's ``original`` on the same images, per metric (paired bootstrap difference, interval,
  p-value, McNemar's exact p for 0/1 outcomes; see :mod:`cliprobe.metrics.paired`);
- :func:`seed001_table` / :func:`seed001_markdown` are seed 001's table, ``0.754 [0.721,
  0.785]``, with a trailing ``*`` where the difference from ``original`` is significant;
- :func:`headline_table`, :func:`per_class_table` are the data behind `dvc plots`.

The ImageNet-C tables (corruptions.csv, severity.csv, CE / mCE) are in
:mod:`cliprobe.metrics.corruption_summary`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.datasets.manifest import has_classes
from cliprobe.errors import DataError
from cliprobe.metrics import paired
from cliprobe.metrics import retrieval as rm
from cliprobe.scores.captions import per_image_caption_values
from cliprobe.seeding import derive_seed

if TYPE_CHECKING:  # what the stage passes: the whole params or its own slice
    from cliprobe.config.schema import Params
    from cliprobe.config.stage_params import StageParams

HEADLINE = "seed001_accuracy"

#: The per-image top-1 outcome whose complement is the error CE and mCE use.
ERROR_SOURCE_METRIC = "zeroshot_acc1"
#: Name of that error (``1 − ERROR_SOURCE_METRIC``) in corruptions.csv, severity.csv, figures.
ERROR_METRIC = "zeroshot_error"
ERROR_DESCRIPTION = f"{ERROR_METRIC} = 1 - {ERROR_SOURCE_METRIC}"

#: Recall metrics, computed per image from the stored ranks (0/1 outcomes).
RECALL_METRIC = re.compile(r"^recall_(own|class)_at_(\d+)$")
#: Per-image metrics stored as columns of per_image.parquet: metric -> column.
COLUMN_METRICS = {
    "seed001_accuracy": "seed001_accuracy",
    "cosine_drift": "cosine_drift",
    "zeroshot_acc1": "zeroshot_correct",
    "zeroshot_acc5": "zeroshot_correct_at_5",
    "attack_success_rate": "attack_success",
    "word_probability": "p_word",
    "word_probability_all_classes": "p_word_all_classes",
    "map_class": "ap_class",
    "map_own": "ap_own",
    "word_search_above_clean": "word_search_above_clean",
    "word_search_gain": "word_search_gain",
}
#: Metrics with a 0/1 outcome per image (McNemar's test applies). Text -> image recall is a 0/1
#: outcome per *caption*, but captions of one image are not independent pairs: no McNemar.
BINARY_METRICS = frozenset({"zeroshot_acc1", "zeroshot_acc5", "attack_success_rate",
                            "word_search_above_clean"})
IMAGE_TO_TEXT_METRIC = re.compile(r"^image_to_text_recall_at_\d+$")

COMPARISON_COLUMNS = ["model", "dataset", "manipulation", "metric", "difference", "ci_low",
                      "ci_high", "p_value", "mcnemar_p", "significant", "resampled", "n"]
SIGNIFICANT_MARK = "*"
#: summary.json's key of a metric's interval: ``<metric>-ci``.
INTERVAL_SUFFIX = "-ci"


def is_binary(metric: str) -> bool:
    """True for metrics whose per-image values are 0/1 outcomes."""
    return (metric in BINARY_METRICS or RECALL_METRIC.match(metric) is not None
            or IMAGE_TO_TEXT_METRIC.match(metric) is not None)


def grid(models: Iterable[str], datasets: Iterable[str],
         manipulations: Iterable[str]) -> list[tuple[str, str, str]]:
    """(model, dataset, manipulation) of every cell, ``original`` first for each pair."""
    names = [paths.CLEAN, *manipulations]
    return [(m, d, x) for m in models for d in list(datasets) for x in names]


def cell_key(cell: dict[str, Any]) -> tuple[str, str, str]:
    """(model, dataset, manipulation) of a cell's metrics.json."""
    key = cell["cell"]
    return key["model"], key["dataset"], key["manipulation"]


def is_random(cell: dict[str, Any]) -> bool:
    """True when the cell comes from a random-weight model."""
    return bool(cell["provenance"].get("random_weights"))


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
                         "n_not_applicable": cell.get("n_not_applicable", 0),
                         "random_weights": is_random(cell)})
    return pd.DataFrame(rows)


def format_estimate(value: float, low: float, high: float) -> str:
    """``0.754 [0.721, 0.785]``."""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def seed001_table(
    long: pd.DataFrame, manipulations: list[str],
    significant: set[tuple[str, str, str]] | None = None,
) -> pd.DataFrame:
    """Seed 001's table: rows (model, dataset), columns manipulations, value with interval.

    A cell whose (model, dataset, manipulation) is in ``significant`` gets a trailing ``*``.
    """
    marked = significant or set()
    head = long[long["metric"] == HEADLINE].copy()
    head["text"] = [
        format_estimate(v, lo, hi) + (SIGNIFICANT_MARK if (m, d, x) in marked else "")
        for v, lo, hi, m, d, x in zip(head["value"], head["ci_low"], head["ci_high"],
                                      head["model"], head["dataset"], head["manipulation"],
                                      strict=True)
    ]
    table = head.pivot(index=["model", "dataset"], columns="manipulation", values="text")
    return table[[paths.CLEAN, *manipulations]].reset_index()


def seed001_markdown(table: pd.DataFrame, params: Params | StageParams, random: bool) -> str:
    """seed001_table.csv as a Markdown table with the legend of the ``*``."""
    confidence = f"{params.stats.confidence:.0%}"
    retrieval = params.retrieval
    own = ("excluded (leave-one-out)" if retrieval.seed001_own_image == "exclude"
           else "included")
    lines = [f"Seed 001 accuracy (mean of per-class means) with {confidence} bootstrap "
             f"intervals (classes resampled): N = {retrieval.neighbours} neighbours from the "
             f"dataset's clean gallery, t = {retrieval.threshold}, the query's own clean image "
             f"{own}.", ""]
    header = [str(column) for column in table.columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(value) for value in row) + " |")
    lines += ["", f"`{SIGNIFICANT_MARK}`: differs from `original` on the same images: the "
              f"{confidence} paired bootstrap interval of the difference (classes resampled, "
              f"{params.stats.bootstrap_resamples} resamples) excludes 0. Differences, "
              "intervals, p-values and McNemar's tests: metrics/comparisons.csv."]
    if random:
        lines += ["", "RANDOM WEIGHTS: not a finding."]
    return "\n".join(lines) + "\n"


def interval_text(low: float, high: float) -> str:
    """``[0.7210, 0.7850]``: an interval as summary.json shows it beside its value."""
    return f"[{low:.4f}, {high:.4f}]"


def summary_tree(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Nested model -> dataset -> manipulation -> metric -> value (what dvc metrics shows).

    Beside each value, ``<metric>-ci`` holds its interval as text (:func:`interval_text`).
    ``dvc metrics diff`` sorts rows by name and ``-`` sorts before digits, letters and ``_``,
    so the interval row comes right after its value (``recall_own_at_1``,
    ``recall_own_at_1-ci``, ``recall_own_at_10``, ...): a change can be read against the
    noise of both revisions. The values keep their names, so older summaries still diff.
    """
    tree: dict[str, Any] = {}
    for cell in cells:
        key = cell["cell"]
        leaf: dict[str, Any] = {}
        for name, estimate in cell["metrics"].items():
            leaf[name] = estimate["value"]
            if estimate.get("ci_low") is not None and estimate.get("ci_high") is not None:
                leaf[name + INTERVAL_SUFFIX] = interval_text(estimate["ci_low"],
                                                             estimate["ci_high"])
        leaf.update({"n_images": cell["n_images"], "n_skipped": cell["n_skipped"],
                     "n_not_applicable": cell.get("n_not_applicable", 0)})
        tree.setdefault(key["model"], {}).setdefault(key["dataset"], {})[
            key["manipulation"]] = leaf
    return tree


def per_class_table(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """Seed 001's per-class accuracy of every cell, long format."""
    rows = [{"model": c["cell"]["model"], "dataset": c["cell"]["dataset"],
             "manipulation": c["cell"]["manipulation"], "class": label, HEADLINE: value}
            for c in cells for label, value in c["per_class_seed001_accuracy"].items()]
    # the header even without rows (caption datasets have no class), so the CSV stays readable
    return pd.DataFrame(rows, columns=["model", "dataset", "manipulation", "class", HEADLINE])


def headline_table(long: pd.DataFrame) -> pd.DataFrame:
    """Seed 001's score per cell (``cell`` = model/dataset/manipulation) with its interval."""
    head = long[long["metric"] == HEADLINE].copy()
    head["cell"] = head["model"] + "/" + head["dataset"] + "/" + head["manipulation"]
    return (head[["cell", "model", "dataset", "manipulation", "value", "ci_low", "ci_high"]]
            .rename(columns={"value": HEADLINE}))


# --- paired comparisons with the original cell -------------------------------------------------


def per_image_weights(frame: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Per-image weights of a weighted-mean metric (text -> image recall: the number of
    captions), None for plain per-image means."""
    caption = per_image_caption_values(frame, metric)
    return caption[1] if caption is not None else None


def per_image_values(frame: pd.DataFrame, metric: str) -> np.ndarray | None:
    """The per-image values whose (weighted, :func:`per_image_weights`) mean is ``metric``;
    None when per_image has no such column."""
    caption = per_image_caption_values(frame, metric)
    if caption is not None:
        return caption[0]
    if metric in COLUMN_METRICS:
        column = COLUMN_METRICS[metric]
        return frame[column].to_numpy(dtype=np.float64) if column in frame else None
    match = RECALL_METRIC.match(metric)
    if match is None:
        return None
    ranks = frame["own_rank" if match[1] == "own" else "class_rank"].to_numpy()
    return rm.recall_at_k(ranks, int(match[2]))


def error_values(frame: pd.DataFrame) -> np.ndarray:
    """Per-image error of :data:`ERROR_METRIC`: ``1 − ERROR_SOURCE_METRIC``."""
    values = per_image_values(frame, ERROR_SOURCE_METRIC)
    if values is None:  # pragma: no cover - ERROR_SOURCE_METRIC always has per-image values
        raise DataError(f"per_image.parquet has no values for {ERROR_SOURCE_METRIC}")
    return 1.0 - values


def compare_cells(
    base: pd.DataFrame, other: pd.DataFrame, metrics: list[str], params: Params | StageParams,
    base_key: str, other_key: str,
) -> list[dict[str, Any]]:
    """Paired comparison of two cells' per-image tables, one row per metric (other − base).

    Images are aligned by image id; seed 001's score resamples classes (images, when the
    images have no class), the others images, text -> image recall with each image's captions
    kept together (weighted by their number). Each metric's bootstrap is seeded from (seed,
    base cell, other cell, metric).
    """
    rows_base, rows_other = paired.align_pairs(base["image_id"].to_numpy(),
                                               other["image_id"].to_numpy())
    if len(rows_base) == 0:
        raise DataError(f"cells {base_key} and {other_key} share no image: cannot compare them")
    base = base.iloc[rows_base]
    other = other.iloc[rows_other]
    stats = params.stats
    out = []
    for metric in metrics:
        first, second = per_image_values(base, metric), per_image_values(other, metric)
        if first is None or second is None:
            continue
        # undefined per image (e.g. attack success where nothing is written): pair what exists
        defined = ~(np.isnan(first) | np.isnan(second))
        if not defined.any():
            continue
        labels = base["label"].to_numpy()[defined]
        first, second = first[defined], second[defined]
        weights = per_image_weights(base, metric)
        seed = derive_seed(params.seed, "paired", base_key, other_key, metric) % (2**32)
        if metric == HEADLINE and has_classes(labels):
            result = paired.paired_class_bootstrap(first, second, labels,
                                                   stats.bootstrap_resamples, stats.confidence,
                                                   seed)
        else:
            result = paired.paired_bootstrap(
                first, second, stats.bootstrap_resamples, stats.confidence, seed,
                weights[defined] if weights is not None else None)
        mcnemar_p = (paired.mcnemar(first, second).p_value if is_binary(metric)
                     else float("nan"))
        out.append({"metric": metric, "difference": result.difference,
                    "ci_low": result.ci_low, "ci_high": result.ci_high,
                    "p_value": result.p_value, "mcnemar_p": mcnemar_p,
                    "significant": result.significant, "resampled": result.resampled,
                    "n": result.n})
    return out


def significant_cells(comparisons: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(model, dataset, manipulation) of the cells whose seed 001 score differs significantly."""
    return {(r.model, r.dataset, r.manipulation)
            for r in comparisons[comparisons["metric"] == HEADLINE].itertuples()
            if r.significant}
