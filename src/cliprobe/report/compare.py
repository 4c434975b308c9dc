"""Compare runs across git revisions or DVC experiments, side by side.

Each run's ``metrics/cells.csv`` (values with intervals) is read from DVC at that revision
(``dvc.api.read``, from the local cache), so branches, commits and ``dvc exp`` experiments
compare in one page. Experiment names are resolved with ``dvc exp show --json``.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Sequence

import pandas as pd

from cliprobe import paths
from cliprobe.errors import CliprobeError

KEYS = ["model", "dataset", "manipulation", "metric"]


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


def side_by_side(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (model, dataset, manipulation, metric); per run value and interval, and
    the difference of each run from the first, flagged where the intervals do not overlap."""
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
        merged[f"intervals disjoint ({label})"] = (
            (merged[f"ci_low ({label})"] > merged[f"ci_high ({base})"])
            | (merged[f"ci_high ({label})"] < merged[f"ci_low ({base})"])
        )
    return merged.sort_values(KEYS).reset_index(drop=True)


def compare(revisions: Sequence[str], include_workspace: bool = True) -> pd.DataFrame:
    """Side-by-side table of the workspace (first, when included) and ``revisions``."""
    runs: dict[str, pd.DataFrame] = {}
    if include_workspace:
        runs["workspace"] = read_cells(None)
    for revision in revisions:
        runs[revision] = read_cells(revision)
    if len(runs) < 2:
        raise CliprobeError("a comparison needs at least two runs (give one or more revisions)")
    return side_by_side(runs)
