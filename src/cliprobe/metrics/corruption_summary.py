"""The grid's ImageNet-C cells assembled: corruptions.csv, severity.csv, CE / mCE with intervals.

Corruption cells are those whose ``cell.function`` starts with ``imagenet_c_`` (the generated
corruptions and ``imagenet_c_released``), except ``imagenet_c_clean``: the clean images of the
same construction, whose error is CE's clean error (:func:`clean_reference`). CE uses the
zero-shot top-1 error ``1 − zeroshot_acc1``
(:data:`~cliprobe.metrics.summary.ERROR_SOURCE_METRIC`,
:data:`~cliprobe.metrics.summary.ERROR_METRIC`), the classification error ImageNet-C's CE is
defined on; it is comparable with AlexNet's published errors only on ImageNet classes with the
CLIP paper's prompts. The formulas are :mod:`cliprobe.metrics.corruption`'s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.manipulations.corruptions import (
    ALL_CORRUPTIONS,
    CLEAN_FUNCTION,
    REGISTRY_PREFIX,
    RELEASED_FUNCTION,
)
from cliprobe.metrics import corruption as cm
from cliprobe.metrics import paired
from cliprobe.metrics.summary import (
    ERROR_DESCRIPTION,
    ERROR_METRIC,
    ERROR_SOURCE_METRIC,
    is_random,
)
from cliprobe.seeding import derive_seed

if TYPE_CHECKING:  # what the stage passes: the whole params or its own slice
    from cliprobe.config.schema import Params
    from cliprobe.config.stage_params import StageParams

LOGGER = logging.getLogger(__name__)

CORRUPTION_COLUMNS = ["model", "dataset", "construction", "corruption", "severity",
                      "manipulation", "metric", "value", "ci_low", "ci_high", "random_weights"]

#: manipulation -> (image ids, per-image error) of one model × dataset, the clean cells
#: (``original``, ``imagenet_c_clean``) included.
PerImageErrors = dict[str, tuple[np.ndarray, np.ndarray]]


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


#: How the images of a group of corruption cells were made (the ``construction`` column):
#: ``imagenet_c`` (Resize 256 + CenterCrop 224, JPEG-85 as released), ``imagenet_c/lossless``,
#: ``full_resolution`` (and ``/lossless``), ``released`` (the official files).
RELEASED_CONSTRUCTION = "released"


def construction_label(params: dict[str, Any]) -> str:
    """A generated corruption cell's construction, with ``/lossless`` when it was not written
    as the released dataset was."""
    construction = str(params.get("construction", "imagenet_c"))
    return construction + ("/lossless" if params.get("encoding") == "lossless" else "")


def corruption_cell(cell: dict[str, Any]) -> CorruptionCell | None:
    """The cell as a :class:`CorruptionCell` when it holds corrupted images (a generated
    ``imagenet_c_<corruption>`` or ``imagenet_c_released``; not the clean reference)."""
    key = cell["cell"]
    function = key.get("function") or ""
    if not function.startswith(REGISTRY_PREFIX) or function == CLEAN_FUNCTION:
        return None
    params = key.get("params") or {}
    if function == RELEASED_FUNCTION:
        return CorruptionCell(key["model"], key["dataset"], key["manipulation"],
                              str(params["corruption"]), int(params["severity"]),
                              RELEASED_CONSTRUCTION, cell)
    return CorruptionCell(key["model"], key["dataset"], key["manipulation"],
                          function[len(REGISTRY_PREFIX):], int(params["severity"]),
                          construction_label(params), cell)


def is_clean_reference(cell: dict[str, Any]) -> bool:
    """True for an ``imagenet_c_clean`` cell (the construction alone, no corruption)."""
    return cell["cell"].get("function") == CLEAN_FUNCTION


def clean_reference(
    construction: str, cells: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]] | None:
    """(manipulation, cell) of the clean images made the way ``construction``'s corrupted
    images were, among one model × dataset's ``cells`` (manipulation -> metrics.json).

    The ``imagenet_c_clean`` cell of the same base construction (the released set's clean
    images are the Resize 256 + CenterCrop 224 ones); for ``full_resolution`` the ``original``
    cell is that construction too. None when the grid has no such cell.
    """
    base = "imagenet_c" if construction == RELEASED_CONSTRUCTION else construction.split("/")[0]
    for name, cell in cells.items():
        if (is_clean_reference(cell)
                and (cell["cell"].get("params") or {}).get("construction", "imagenet_c") == base):
            return name, cell
    if base == "full_resolution" and paths.CLEAN in cells:
        return paths.CLEAN, cells[paths.CLEAN]
    return None


def clean_cells(
    corrupted: list[CorruptionCell], cells_by_key: dict[tuple[str, str, str], dict[str, Any]],
) -> dict[tuple[str, str, str], str]:
    """(model, dataset, construction) -> manipulation of its clean reference
    (:func:`clean_reference`), for every group of ``corrupted`` that has one."""
    out: dict[tuple[str, str, str], str] = {}
    for key in dict.fromkeys((c.model, c.dataset, c.construction) for c in corrupted):
        model, dataset, construction = key
        pair = {x: cell for (m, d, x), cell in cells_by_key.items() if (m, d) == (model, dataset)}
        clean = clean_reference(construction, pair)
        if clean is not None:
            out[key] = clean[0]
    return out


def corruption_order(name: str) -> int:
    """Position of a corruption in SPEC §5 order (unknown names last)."""
    return ALL_CORRUPTIONS.index(name) if name in ALL_CORRUPTIONS else len(ALL_CORRUPTIONS)


def _sorted_by_corruption(frame: pd.DataFrame) -> pd.DataFrame:
    order = frame["corruption"].map(corruption_order)
    return (frame.assign(_order=order)
            .sort_values(["model", "dataset", "construction", "_order", "corruption",
                          "severity"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


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
    return frame if frame.empty else _sorted_by_corruption(frame)


def severity_table(corruptions: pd.DataFrame, long: pd.DataFrame,
                   clean_cells: dict[tuple[str, str, str], str] | None = None) -> pd.DataFrame:
    """plots/severity.csv: one row per (model, dataset, construction, corruption, severity).

    Metric columns (value, ``_ci_low``, ``_ci_high``) are wide; severity 0 is the group's clean
    cell (``clean_cells``: (model, dataset, construction) -> manipulation, the clean images of
    the same construction, :func:`clean_cells`; default ``original``), repeated for every
    corruption so each curve starts from the clean value. ``panel`` (model/dataset/construction)
    separates groups.
    """
    if corruptions.empty:
        return pd.DataFrame(columns=["model", "dataset", "construction", "panel", "corruption",
                                     "severity", "manipulation", ERROR_METRIC,
                                     f"{ERROR_METRIC}_ci_low", f"{ERROR_METRIC}_ci_high",
                                     "random_weights"])
    groups = corruptions[["model", "dataset", "construction", "corruption"]].drop_duplicates()
    reference = groups[["model", "dataset", "construction"]].drop_duplicates()
    reference["manipulation"] = [
        (clean_cells or {}).get((m, d, c), paths.CLEAN)
        for m, d, c in zip(reference["model"], reference["dataset"], reference["construction"],
                           strict=True)]
    clean = long.merge(reference, on=["model", "dataset", "manipulation"])
    source = clean[clean["metric"] == ERROR_SOURCE_METRIC].copy()
    source["metric"] = ERROR_METRIC
    source["value"], source["ci_low"], source["ci_high"] = (
        1.0 - source["value"], 1.0 - source["ci_high"], 1.0 - source["ci_low"])
    clean = pd.concat([clean, source], ignore_index=True)
    clean_rows = groups.merge(clean, on=["model", "dataset", "construction"])
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
    return _sorted_by_corruption(wide)


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
    group: list[CorruptionCell], clean: tuple[str, dict[str, Any]] | None,
    per_image_errors: PerImageErrors, params: Params | StageParams, seed_key: str,
) -> dict[str, Any]:
    """CE / relative CE per corruption, mCE, relative mCE of one model × dataset × construction.

    ``clean`` is the (manipulation, cell) whose error is the clean error: the clean images made
    with the group's construction (:func:`clean_reference`); without one, relative CE and
    relative mCE are null and the report says why. Point estimates use the cells' own values
    (metrics.json, as in corruptions.csv); intervals come from one joint bootstrap over the
    images common to the clean and all corruption cells
    (:func:`cliprobe.metrics.paired.joint_bootstrap_means`), so every CE of a resample is
    computed from the same images. ``per_image_errors`` maps manipulation -> (image ids,
    per-image error), including the clean cell's. A cell repeating another's corruption and
    severity is left out (logged; listed under ``ignored_duplicates``).
    """
    def error_of(cell: dict[str, Any]) -> float:
        return 1.0 - float(cell["metrics"][ERROR_SOURCE_METRIC]["value"])

    used: list[CorruptionCell] = []
    seen: dict[tuple[str, int], str] = {}
    ignored = []
    for c in group:
        if (c.corruption, c.severity) in seen:
            ignored.append(c.manipulation)
            LOGGER.warning("%s/%s/%s repeats %s severity %d (%s) of %s; CE uses the first",
                           c.model, c.dataset, c.manipulation, c.corruption, c.severity,
                           c.construction, seen[(c.corruption, c.severity)])
            continue
        seen[(c.corruption, c.severity)] = c.manipulation
        used.append(c)

    point_errors: dict[str, dict[int, float]] = {}
    for c in used:
        point_errors.setdefault(c.corruption, {})[c.severity] = error_of(c.cell)
    clean_name = clean[0] if clean is not None else None
    clean_error = error_of(clean[1]) if clean is not None else None
    point = cm.corruption_summary(point_errors, clean_error)

    # joint bootstrap over the images every cell of the group scored
    columns = [*([clean_name] if clean_name else []), *(c.manipulation for c in used)]
    common = pd.Index(per_image_errors[columns[0]][0])
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
        offset = 1 if clean_name else 0
        clean_draws = means[:, 0] if clean_name else None
        for row in means:
            errors: dict[str, dict[int, float]] = {}
            for c, value in zip(used, row[offset:], strict=True):
                errors.setdefault(c.corruption, {})[c.severity] = float(value)
            draws.append(cm.corruption_summary(errors, float(row[0]) if clean_name else None))

    confidence = params.stats.confidence

    def interval(point_value: float | None, pick: Any) -> dict[str, Any]:
        samples = np.array([pick(d) for d in draws], dtype=np.float64) if draws else None
        return _interval(point_value, samples, confidence)

    report: dict[str, Any] = {
        "error_metric": ERROR_DESCRIPTION,
        "clean_cell": clean_name or ("none: select the imagenet_c_clean cell "
                                     "(conf/manipulation/imagenet_c_clean.yaml) for relative "
                                     "CE and relative mCE"),
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


def corruption_summaries(
    corrupted: list[CorruptionCell], cells_by_key: dict[tuple[str, str, str], dict[str, Any]],
    errors: dict[tuple[str, str], PerImageErrors], params: Params | StageParams,
) -> dict[str, Any]:
    """``corruption_summary`` of summary.json: model -> dataset -> construction -> report.

    One :func:`corruption_report` per model × dataset × construction, its clean error from the
    clean cell of the same construction (:func:`clean_reference`; without one, relative CE and
    relative mCE stay empty, with a warning); a group whose cells have no
    :data:`ERROR_SOURCE_METRIC` (no zero-shot scores) is left out with a warning.
    """
    groups: dict[tuple[str, str, str], list[CorruptionCell]] = {}
    for c in corrupted:
        groups.setdefault((c.model, c.dataset, c.construction), []).append(c)
    report: dict[str, Any] = {}
    for (model, dataset, construction), group in groups.items():
        if any(ERROR_SOURCE_METRIC not in c.cell["metrics"] for c in group):
            LOGGER.warning("%s/%s has no %s (zero-shot scores): no CE / mCE", model, dataset,
                           ERROR_SOURCE_METRIC)
            continue
        pair = {x: cell for (m, d, x), cell in cells_by_key.items() if (m, d) == (model, dataset)}
        clean = clean_reference(construction, pair)
        if clean is None:
            LOGGER.warning("%s/%s: no clean cell made with the %s construction (select "
                           "imagenet_c_clean): relative CE and relative mCE left empty", model,
                           dataset, construction)
        report.setdefault(model, {}).setdefault(dataset, {})[construction] = corruption_report(
            group, clean, errors[(model, dataset)], params,
            f"{model}/{dataset}/{construction}")
    return report
