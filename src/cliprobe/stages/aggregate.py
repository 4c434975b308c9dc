"""Stage aggregate: collect the grid's cell metrics into the summary, tables and plot data.

Reads only the cells of the grid params.yaml selects (never globbing), so stale cells of other
models or datasets on disk cannot leak into the summary.

Outputs:

- metrics/summary.json (for `dvc metrics show/diff`): model -> dataset -> manipulation ->
  metric; with corruption cells also ``corruption_summary`` -> model -> dataset ->
  construction -> CE / relative CE per corruption, mCE, relative mCE, each with an interval;
- metrics/cells.csv: every metric of every cell with its interval;
- metrics/comparisons.csv: every non-original cell against its model × dataset's ``original``
  cell on the same images, per metric: paired bootstrap difference (cell − original), its
  interval, bootstrap p-value, McNemar's exact p for binary metrics (recall@k), ``significant``
  (the interval excludes 0); see :mod:`cliprobe.metrics.paired`;
- metrics/seed001_table.csv: seed 001's table, ``0.754 [0.721, 0.785]``, with a trailing ``*``
  when the cell's difference from ``original`` is significant (same shape and header as
  before; the machine-readable flag is comparisons.csv's ``significant`` column);
  metrics/seed001_table.md: the same table in Markdown with the legend of the ``*``;
- metrics/corruptions.csv: the ImageNet-C cells (long: one row per model, dataset,
  construction, corruption, severity and metric, including the error CE is computed from);
- plots/headline.csv, plots/per_class.csv, plots/severity.csv (for `dvc plots`).

Corruption cells are those whose ``cell.function`` starts with ``imagenet_c_``. CE uses the
zero-shot top-1 error ``1 − zeroshot_acc1`` (:data:`ERROR_SOURCE_METRIC`, :data:`ERROR_METRIC`),
the classification error ImageNet-C's CE is defined on; it is comparable with AlexNet's
published errors only on ImageNet classes with the CLIP paper's prompts.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import load_params
from cliprobe.config.schema import Params
from cliprobe.datasets.manifest import has_classes
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path, write_json, write_text
from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, REGISTRY_PREFIX
from cliprobe.metrics import corruption as cm
from cliprobe.metrics import paired
from cliprobe.metrics import retrieval as rm
from cliprobe.scores.captions import per_image_caption_values
from cliprobe.seeding import derive_seed
from cliprobe.stages._common import parser

HEADLINE = "seed001_accuracy"

#: The per-image top-1 outcome whose complement is the error CE and mCE use. Retrieval until
#: the zero-shot issue lands; then the zero-shot top-1 accuracy replaces it.
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


def is_binary(metric: str) -> bool:
    """True for metrics whose per-image values are 0/1 outcomes."""
    return (metric in BINARY_METRICS or RECALL_METRIC.match(metric) is not None
            or IMAGE_TO_TEXT_METRIC.match(metric) is not None)

COMPARISON_COLUMNS = ["model", "dataset", "manipulation", "metric", "difference", "ci_low",
                      "ci_high", "p_value", "mcnemar_p", "significant", "resampled", "n"]
CORRUPTION_COLUMNS = ["model", "dataset", "construction", "corruption", "severity",
                      "manipulation", "metric", "value", "ci_low", "ci_high", "random_weights"]
SIGNIFICANT_MARK = "*"


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
                         "random_weights": is_random(cell)})
    return pd.DataFrame(rows)


def is_random(cell: dict[str, Any]) -> bool:
    """True when the cell comes from a random-weight model."""
    return bool(cell["provenance"].get("random_weights"))


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


def seed001_markdown(table: pd.DataFrame, params: Params, random: bool) -> str:
    """seed001_table.csv as a Markdown table with the legend of the ``*``."""
    confidence = f"{params.stats.confidence:.0%}"
    lines = [f"Seed 001 accuracy (mean of per-class means) with {confidence} bootstrap "
             "intervals (classes resampled).", ""]
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
    # the header even without rows (caption datasets have no class), so the CSV stays readable
    return pd.DataFrame(rows, columns=["model", "dataset", "manipulation", "class", HEADLINE])


# --- paired comparisons with the original cell -------------------------------------------------


def read_per_image(model: str, dataset: str, manipulation: str) -> pd.DataFrame:
    """A cell's per_image.parquet (image_id, label, seed001_accuracy, own_rank, ...)."""
    file = paths.cell_dir(model, dataset, manipulation) / "per_image.parquet"
    if not file.is_file():
        raise DataError(f"cell {model}/{dataset}/{manipulation} has no {file}: run "
                        f"`dvc repro` (the score stage of that cell did not run)")
    return pd.read_parquet(file)


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
    base: pd.DataFrame, other: pd.DataFrame, metrics: list[str], params: Params,
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


# --- ImageNet-C corruption cells ---------------------------------------------------------------


@dataclass(frozen=True)
class CorruptionCell:
    """An ImageNet-C cell of the grid, identified from its metrics.json."""

    model: str
    dataset: str
    manipulation: str
    corruption: str
    severity: int
    construction: str
    cell: dict[str, Any]


def corruption_cell(cell: dict[str, Any]) -> CorruptionCell | None:
    """The cell as a :class:`CorruptionCell` when its function is ``imagenet_c_*``."""
    key = cell["cell"]
    function = key.get("function") or ""
    if not function.startswith(REGISTRY_PREFIX):
        return None
    params = key.get("params") or {}
    return CorruptionCell(key["model"], key["dataset"], key["manipulation"],
                          function[len(REGISTRY_PREFIX):], int(params["severity"]),
                          str(params.get("construction", "imagenet_c")), cell)


def corruption_order(name: str) -> int:
    """Position of a corruption in SPEC §5 order (unknown names last)."""
    return ALL_CORRUPTIONS.index(name) if name in ALL_CORRUPTIONS else len(ALL_CORRUPTIONS)


def corruptions_table(corrupted: list[CorruptionCell]) -> pd.DataFrame:
    """Long table of the corruption cells: every metric plus :data:`ERROR_METRIC`."""
    rows = []
    for c in corrupted:
        base = {"model": c.model, "dataset": c.dataset, "construction": c.construction,
                "corruption": c.corruption, "severity": c.severity,
                "manipulation": c.manipulation, "random_weights": is_random(c.cell)}
        estimates = dict(c.cell["metrics"])
        source = estimates.get(ERROR_SOURCE_METRIC)
        if source is not None:  # error = 1 - source; the percentile interval flips with it
            estimates[ERROR_METRIC] = {"value": 1.0 - source["value"],
                                       "ci_low": 1.0 - source["ci_high"],
                                       "ci_high": 1.0 - source["ci_low"]}
        for metric, estimate in estimates.items():
            rows.append({**base, "metric": metric, "value": estimate["value"],
                         "ci_low": estimate["ci_low"], "ci_high": estimate["ci_high"]})
    frame = pd.DataFrame(rows, columns=CORRUPTION_COLUMNS)
    if frame.empty:
        return frame
    order = frame["corruption"].map(corruption_order)
    return (frame.assign(_order=order)
            .sort_values(["model", "dataset", "construction", "_order", "corruption",
                          "severity"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def severity_table(corruptions: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """plots/severity.csv: one row per (model, dataset, construction, corruption, severity).

    Metric columns (value, ``_ci_low``, ``_ci_high``) are wide; severity 0 is the model ×
    dataset's ``original`` cell, repeated for every corruption so each curve starts from the
    clean value. ``panel`` (model/dataset/construction) separates curves of different groups.
    """
    if corruptions.empty:
        return pd.DataFrame(columns=["model", "dataset", "construction", "panel", "corruption",
                                     "severity", "manipulation", ERROR_METRIC,
                                     f"{ERROR_METRIC}_ci_low", f"{ERROR_METRIC}_ci_high",
                                     "random_weights"])
    clean = long[long["manipulation"] == paths.CLEAN].copy()
    source = clean[clean["metric"] == ERROR_SOURCE_METRIC].copy()
    source["metric"] = ERROR_METRIC
    source["value"], source["ci_low"], source["ci_high"] = (
        1.0 - source["value"], 1.0 - source["ci_high"], 1.0 - source["ci_low"])
    clean = pd.concat([clean, source], ignore_index=True)
    groups = corruptions[["model", "dataset", "construction", "corruption"]].drop_duplicates()
    clean_rows = groups.merge(clean, on=["model", "dataset"])
    clean_rows["severity"] = 0
    rows = pd.concat([clean_rows[CORRUPTION_COLUMNS], corruptions], ignore_index=True)
    keys = ["model", "dataset", "construction", "corruption", "severity", "manipulation",
            "random_weights"]
    values = rows.pivot_table(index=keys, columns="metric",
                              values=["value", "ci_low", "ci_high"], aggfunc="first")
    wide = pd.DataFrame(index=values.index)
    metrics = [ERROR_METRIC, *[m for m in dict.fromkeys(rows["metric"]) if m != ERROR_METRIC]]
    for metric in metrics:
        if ("value", metric) not in values.columns:
            continue
        wide[metric] = values[("value", metric)]
        wide[f"{metric}_ci_low"] = values[("ci_low", metric)]
        wide[f"{metric}_ci_high"] = values[("ci_high", metric)]
    wide = wide.reset_index()
    wide.insert(3, "panel", wide["model"] + "/" + wide["dataset"] + "/" + wide["construction"])
    order = wide["corruption"].map(corruption_order)
    return (wide.assign(_order=order)
            .sort_values(["model", "dataset", "construction", "_order", "corruption",
                          "severity"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def _finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None for NaN / infinite / missing (JSON null, not NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _interval(
    point: float | None, draws: np.ndarray | None, confidence: float
) -> dict[str, Any]:
    """``{value, ci_low, ci_high}``: percentile interval of ``draws``, clamped to the point.

    None (JSON null) for an undefined point (mCE of a partial grid); no draws (no resampling)
    gives a zero-width interval, as :func:`cliprobe.metrics.bootstrap.bootstrap_mean` does.
    """
    if point is None or not math.isfinite(point):
        return {"value": None, "ci_low": None, "ci_high": None}
    if draws is None or len(draws) == 0:
        return {"value": point, "ci_low": point, "ci_high": point}
    finite = np.asarray(draws, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {"value": point, "ci_low": None, "ci_high": None}
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return {"value": point, "ci_low": float(min(low, point)), "ci_high": float(max(high, point))}


def corruption_report(
    group: list[CorruptionCell], clean_cell: dict[str, Any],
    per_image_errors: dict[str, tuple[np.ndarray, np.ndarray]], params: Params, seed_key: str,
) -> dict[str, Any]:
    """CE / relative CE per corruption, mCE, relative mCE of one model × dataset × construction.

    Point estimates use the cells' own values (metrics.json, as in corruptions.csv); intervals
    come from one joint bootstrap over the images common to the clean and all corruption cells
    (:func:`cliprobe.metrics.paired.joint_bootstrap_means`), so every CE of a resample is
    computed from the same images. ``per_image_errors`` maps manipulation -> (image ids,
    per-image error), including ``original``.
    """
    def error_of(cell: dict[str, Any]) -> float:
        return 1.0 - float(cell["metrics"][ERROR_SOURCE_METRIC]["value"])

    used: list[CorruptionCell] = []
    seen: dict[tuple[str, int], str] = {}
    ignored = []
    for c in group:
        if (c.corruption, c.severity) in seen:
            ignored.append(c.manipulation)
            print(f"aggregate: warning: {c.model}/{c.dataset}/{c.manipulation} repeats "
                  f"{c.corruption} severity {c.severity} ({c.construction}) of "
                  f"{seen[(c.corruption, c.severity)]}; CE uses the first", file=sys.stderr)
            continue
        seen[(c.corruption, c.severity)] = c.manipulation
        used.append(c)

    point_errors: dict[str, dict[int, float]] = {}
    for c in used:
        point_errors.setdefault(c.corruption, {})[c.severity] = error_of(c.cell)
    clean_error = error_of(clean_cell)
    point = cm.corruption_summary(point_errors, clean_error)

    # joint bootstrap over the images every cell of the group scored
    columns = [paths.CLEAN, *(c.manipulation for c in used)]
    common = pd.Index(per_image_errors[paths.CLEAN][0])
    for name in columns[1:]:
        common = common.intersection(pd.Index(per_image_errors[name][0]), sort=False)
    resamples = params.stats.bootstrap_resamples
    draws: list[dict[str, Any]] = []
    clean_draws: np.ndarray | None = None
    if resamples > 0 and len(common) > 0:
        matrix = np.column_stack([
            pd.Series(per_image_errors[name][1], index=per_image_errors[name][0])
            .reindex(common).to_numpy(dtype=np.float64)
            for name in columns
        ])
        seed = derive_seed(params.seed, "corruption_summary", seed_key) % (2**32)
        means = paired.joint_bootstrap_means(matrix, resamples, seed)
        clean_draws = means[:, 0]
        for row in means:
            errors: dict[str, dict[int, float]] = {}
            for c, value in zip(used, row[1:], strict=True):
                errors.setdefault(c.corruption, {})[c.severity] = float(value)
            draws.append(cm.corruption_summary(errors, float(row[0])))

    confidence = params.stats.confidence

    def interval(point_value: float | None, pick: Any) -> dict[str, Any]:
        samples = np.array([pick(d) for d in draws], dtype=np.float64) if draws else None
        return _interval(point_value, samples, confidence)

    report: dict[str, Any] = {
        "error_metric": ERROR_DESCRIPTION,
        "clean_error": _interval(clean_error, clean_draws, confidence),
        "ce": {name: interval(value, lambda d, n=name: d["ce"][n])
               for name, value in point["ce"].items()},
        "relative_ce": {name: interval(value, lambda d, n=name: d["relative_ce"][n])
                        for name, value in point["relative_ce"].items()},
        "corruptions_present": point["corruptions_present"],
        "complete": point["complete"],
        "n_images": len(common),
        "resampled": "images",
        "resamples": resamples if draws else 0,
        "confidence": confidence,
    }
    for key in ("mce", "relative_mce", "mce_over_present", "relative_mce_over_present"):
        report[key] = interval(_finite_or_none(point[key]), lambda d, k=key: d[k])
    if ignored:
        report["ignored_duplicates"] = ignored
    return report


def write_csv(frame: pd.DataFrame, path: Any) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    params = load_params(args.params)
    cells = load_cells(params)
    long = long_table(cells)
    by_key = {(c["cell"]["model"], c["cell"]["dataset"], c["cell"]["manipulation"]): c
              for c in cells}
    corrupted = [c for c in map(corruption_cell, cells) if c is not None]
    corrupted_keys = {(c.model, c.dataset, c.manipulation) for c in corrupted}

    comparison_rows: list[dict[str, Any]] = []
    errors: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for model in params.model:
        for dataset in params.dataset:
            base = read_per_image(model, dataset, paths.CLEAN)
            base_key = f"{model}/{dataset}/{paths.CLEAN}"
            pair_errors = errors.setdefault((model, dataset), {})
            if any((model, dataset, name) in corrupted_keys for name in params.manipulation):
                # CE's clean error: only where corruption cells need it (a caption dataset or a
                # pooled-feature model has no zero-shot top-1)
                pair_errors[paths.CLEAN] = (base["image_id"].to_numpy(), error_values(base))
            for manipulation in params.manipulation:
                frame = read_per_image(model, dataset, manipulation)
                metrics = list(by_key[(model, dataset, manipulation)]["metrics"])
                for row in compare_cells(base, frame, metrics, params, base_key,
                                         f"{model}/{dataset}/{manipulation}"):
                    comparison_rows.append({"model": model, "dataset": dataset,
                                            "manipulation": manipulation, **row})
                if (model, dataset, manipulation) in corrupted_keys:
                    pair_errors[manipulation] = (frame["image_id"].to_numpy(),
                                                 error_values(frame))
    comparisons = pd.DataFrame(comparison_rows, columns=COMPARISON_COLUMNS)
    significant = {(r.model, r.dataset, r.manipulation)
                   for r in comparisons[comparisons["metric"] == HEADLINE].itertuples()
                   if r.significant}

    tree = summary(cells)
    if corrupted:
        report: dict[str, Any] = {}
        groups: dict[tuple[str, str, str], list[CorruptionCell]] = {}
        for c in corrupted:
            groups.setdefault((c.model, c.dataset, c.construction), []).append(c)
        for (model, dataset, construction), group in groups.items():
            clean_cell = by_key[(model, dataset, paths.CLEAN)]
            if ERROR_SOURCE_METRIC not in clean_cell["metrics"]:
                print(f"aggregate: warning: no {ERROR_SOURCE_METRIC} (retrieval.recall_k lacks "
                      "1): no CE / mCE", file=sys.stderr)
                continue
            report.setdefault(model, {}).setdefault(dataset, {})[construction] = (
                corruption_report(group, clean_cell, errors[(model, dataset)], params,
                                  f"{model}/{dataset}/{construction}"))
        tree["corruption_summary"] = report

    write_json(paths.METRICS / "summary.json", tree)
    write_csv(long, paths.METRICS / "cells.csv")
    write_csv(comparisons, paths.METRICS / "comparisons.csv")
    table = seed001_table(long, list(params.manipulation), significant)
    write_csv(table, paths.METRICS / "seed001_table.csv")
    random = bool(long["random_weights"].any())
    write_text(paths.METRICS / "seed001_table.md", seed001_markdown(table, params, random))
    corruptions = corruptions_table(corrupted)
    write_csv(corruptions, paths.METRICS / "corruptions.csv")
    write_csv(severity_table(corruptions, long), paths.PLOTS / "severity.csv")
    head = long[long["metric"] == HEADLINE].copy()
    head["cell"] = head["model"] + "/" + head["dataset"] + "/" + head["manipulation"]
    write_csv(head[["cell", "model", "dataset", "manipulation", "value", "ci_low", "ci_high"]]
              .rename(columns={"value": HEADLINE}), paths.PLOTS / "headline.csv")
    write_csv(per_class_table(cells), paths.PLOTS / "per_class.csv")
    print(f"aggregate: {len(cells)} cells ({len(corrupted)} ImageNet-C), "
          f"{int(comparisons['significant'].sum())} of {len(comparisons)} paired comparisons "
          f"significant -> {paths.METRICS}/summary.json, cells.csv, comparisons.csv, "
          f"seed001_table.csv" + (", corruptions.csv" if corrupted else "")
          + ("  [RANDOM WEIGHTS: not findings]" if random else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
