"""Compare runs across git revisions or DVC experiments, side by side.

Each run's ``metrics/cells.csv`` (values with intervals) is read from DVC at that revision
(``dvc.api.read``, from the local cache), so branches, commits and ``dvc exp`` experiments
compare in one page. Experiment names are resolved with ``dvc exp show --json``.

Where two runs scored the same images in a cell (same image ids, and the same labels and
content hashes in the datasets' manifests), the difference of every metric is tested with the
paired test the pipeline uses against ``original`` (:func:`cliprobe.metrics.summary.
compare_cells`: paired bootstrap, McNemar for 0/1 outcomes), on each cell's
``per_image.parquet`` at both revisions. Elsewhere the flag falls back to non-overlapping 95%
intervals, a conservative sign; the table says which test flagged what.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.errors import CliprobeError
from cliprobe.metrics.summary import compare_cells

KEYS = ["model", "dataset", "manipulation", "metric"]
#: Manifest columns that must agree for two runs' images to count as the same images.
SAME_IMAGE_COLUMNS = ("image_id", "label", "sha256")


def _experiment_revisions() -> dict[str, str]:
    """Experiment name -> commit sha, from ``dvc exp show --json``."""
    try:
        result = subprocess.run(["dvc", "exp", "show", "--json", "--all-branches"],
                                capture_output=True, text=True, check=True)
        rows = json.loads(result.stdout or "[]")
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return {}
    names: dict[str, str] = {}
    for baseline in rows:
        for experiment in baseline.get("experiments") or []:
            for run in experiment.get("revs") or []:
                if run.get("name"):
                    names[run["name"]] = run["rev"]
    return names


def resolve(revision: str) -> str:
    """A git revision for ``revision`` (a branch, tag, commit or experiment name)."""
    check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                           capture_output=True, text=True)
    if check.returncode == 0:
        return check.stdout.strip()
    experiments = _experiment_revisions()
    if revision in experiments:
        return experiments[revision]
    raise CliprobeError(
        f"'{revision}' is neither a git revision nor a DVC experiment here; list them with "
        "`git branch -a` and `dvc exp show`"
    )


def read_cells(revision: str | None) -> pd.DataFrame:
    """``metrics/cells.csv`` at ``revision`` (None = the workspace)."""
    target = paths.METRICS / "cells.csv"
    if revision is None:
        return pd.read_csv(target)
    import dvc.api

    try:
        text = dvc.api.read(str(target), repo=".", rev=resolve(revision))
    except CliprobeError:
        raise
    except Exception as error:  # DVC raises many kinds; the remedy is the same
        raise CliprobeError(
            f"cannot read {target} at '{revision}' from DVC ({type(error).__name__}); run the "
            f"pipeline there first, or `dvc pull` its outputs"
        ) from None
    return pd.read_csv(io.StringIO(text))


def read_parquet(path: str, revision: str | None) -> pd.DataFrame | None:
    """A Parquet output at ``revision`` (None = the workspace); None when it cannot be read
    (not in the DVC cache, not an output there)."""
    if revision is None:
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError):
            return None
    import dvc.api

    try:
        with dvc.api.open(path, repo=".", rev=resolve(revision), mode="rb") as handle:
            return pd.read_parquet(io.BytesIO(handle.read()))
    except Exception:  # missing from the cache or not tracked there: no paired test
        return None


@dataclass
class Run:
    """One run of a comparison: its label, git revision (None = workspace) and cells."""

    label: str
    revision: str | None
    cells: pd.DataFrame

    def per_image(self, model: str, dataset: str, manipulation: str) -> pd.DataFrame | None:
        return read_parquet(str(paths.cell_dir(model, dataset, manipulation)
                                / "per_image.parquet"), self.revision)

    def manifest(self, dataset: str) -> pd.DataFrame | None:
        return read_parquet(str(paths.manifest_path(dataset)), self.revision)


def same_images(first: pd.DataFrame | None, second: pd.DataFrame | None) -> bool:
    """True when two manifests agree on every image both hold (id, label, content hash where
    recorded) and share at least one image."""
    if first is None or second is None or "image_id" not in first or "image_id" not in second:
        return False
    columns = [c for c in SAME_IMAGE_COLUMNS if c in first and c in second]
    merged = first[columns].astype(str).merge(second[columns].astype(str), on="image_id",
                                              suffixes=("_a", "_b"))
    if merged.empty:
        return False
    return all((merged[f"{c}_a"] == merged[f"{c}_b"]).all() for c in columns if c != "image_id")


def paired_differences(base: Run, other: Run, seed: int, resamples: int,
                       confidence: float) -> pd.DataFrame:
    """The paired test of ``other`` − ``base`` for every cell both ran on the same images:
    one row per (model, dataset, manipulation, metric) with difference, interval, p-values,
    ``significant`` and ``n`` (common images)."""
    settings = SimpleNamespace(seed=seed, stats=SimpleNamespace(
        bootstrap_resamples=resamples, confidence=confidence))
    common = base.cells.merge(other.cells[KEYS], on=KEYS)
    rows: list[dict[str, Any]] = []
    same: dict[str, bool] = {}
    for (model, dataset, manipulation), group in common.groupby(KEYS[:3], sort=False):
        if dataset not in same:
            same[dataset] = same_images(base.manifest(dataset), other.manifest(dataset))
        if not same[dataset]:
            continue
        first = base.per_image(model, dataset, manipulation)
        second = other.per_image(model, dataset, manipulation)
        if first is None or second is None:
            continue
        try:
            results = compare_cells(first, second, list(group["metric"]), settings,
                                    f"{base.label}:{model}/{dataset}/{manipulation}",
                                    f"{other.label}:{model}/{dataset}/{manipulation}")
        except CliprobeError:  # no image in common
            continue
        rows += [{"model": model, "dataset": dataset, "manipulation": manipulation, **r}
                 for r in results]
    columns = [*KEYS, "difference", "ci_low", "ci_high", "p_value", "mcnemar_p", "significant",
               "n"]
    return pd.DataFrame(rows).reindex(columns=columns)


def side_by_side(runs: dict[str, pd.DataFrame],
                 paired: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per (model, dataset, manipulation, metric); per run value and interval, and
    the difference of each run from the first. ``flag (<run>)`` is the paired test's
    significance where ``paired[<run>]`` has the row (``test (<run>)`` = 'paired'), else
    whether the two 95% intervals are disjoint ('intervals')."""
    labels = list(runs)
    merged: pd.DataFrame | None = None
    for label in labels:
        part = runs[label][[*KEYS, "value", "ci_low", "ci_high"]].rename(
            columns={c: f"{c} ({label})" for c in ("value", "ci_low", "ci_high")})
        merged = part if merged is None else merged.merge(part, on=KEYS, how="outer")
    assert merged is not None
    base = labels[0]
    for label in labels[1:]:
        merged[f"difference ({label} - {base})"] = (merged[f"value ({label})"]
                                                    - merged[f"value ({base})"])
        disjoint = ((merged[f"ci_low ({label})"] > merged[f"ci_high ({base})"])
                    | (merged[f"ci_high ({label})"] < merged[f"ci_low ({base})"]))
        merged[f"intervals disjoint ({label})"] = disjoint
        test = (paired or {}).get(label)
        if test is not None and len(test):
            columns = {"difference": f"paired difference ({label})",
                       "ci_low": f"paired ci_low ({label})",
                       "ci_high": f"paired ci_high ({label})",
                       "p_value": f"p_value ({label})", "mcnemar_p": f"mcnemar_p ({label})",
                       "significant": f"paired significant ({label})",
                       "n": f"paired n ({label})"}
            merged = merged.merge(test.rename(columns=columns)[[*KEYS, *columns.values()]],
                                  on=KEYS, how="left")
            has_test = merged[f"paired significant ({label})"].notna()
            merged[f"test ({label})"] = has_test.map({True: "paired", False: "intervals"})
            merged[f"flag ({label})"] = merged[f"paired significant ({label})"].where(
                has_test, disjoint).astype(bool)
        else:
            merged[f"test ({label})"] = "intervals"
            merged[f"flag ({label})"] = disjoint
    return merged.sort_values(KEYS).reset_index(drop=True)


def compare(revisions: Sequence[str], include_workspace: bool = True, seed: int = 0,
            resamples: int = 1000, confidence: float = 0.95) -> pd.DataFrame:
    """Side-by-side table of ``revisions`` and then the workspace (when included), with the
    paired test of each run against the first (the baseline) where the images are the
    same."""
    runs = [Run(revision, revision, read_cells(revision)) for revision in revisions]
    if include_workspace:
        runs.append(Run("workspace", None, read_cells(None)))
    if len(runs) < 2:
        raise CliprobeError("a comparison needs at least two runs (give one or more revisions)")
    paired = {run.label: paired_differences(runs[0], run, seed, resamples, confidence)
              for run in runs[1:]}
    table = side_by_side({run.label: run.cells for run in runs}, paired)
    table.attrs["random_weights"] = any(
        bool(run.cells["random_weights"].any()) for run in runs if "random_weights" in run.cells)
    return table
