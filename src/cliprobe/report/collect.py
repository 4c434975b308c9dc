"""Gather what a report shows from a finished run's files (never from raw embeddings).

Everything is discovered from files, so a new metric (a value in metrics/cells.csv), a new
table (a CSV under metrics/) or a new figure (a PNG under plots/figures) appears in the report
without code changes, and only for what was run. A metric's words (label, description, unit,
direction) come from :mod:`cliprobe.metrics.registry`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cliprobe import paths
from cliprobe.metrics.changes import change_table
from cliprobe.provenance import package_versions

#: Figure name prefixes and the section each belongs to, in report order.
FIGURE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("heatmap_", "Heatmaps"),
    ("severity_", "Severity curves"),
    ("corruption_", "Corruptions"),
    ("class_bars_", "Per-class accuracy"),
    ("box_", "Distributions"),
    ("hist_", "Distributions"),
    ("gallery_", "Most fooled images"),
    ("typographic_matrix_", "Object × written word"),
    ("proximity_", "How close the word is to the object"),
    ("saliency_", "Where the model looks"),
)
#: Tables whose numbers the page shows in its own layout (corruptions.csv: the per-pair
#: tables, severity curves and CE tables); everything else under metrics/ goes to "More
#: tables", when it has rows.
KNOWN_TABLES = {"cells.csv", "comparisons.csv", "seed001_table.csv", "corruptions.csv"}
#: Manipulation families, by the module of cliprobe.manipulations that registers the function.
MANIPULATION_FAMILIES = {
    "basic": "seed 001: blur, crop, grey",
    "typographic": "written words",
    "occlusion": "occlusion",
    "composition": "sequences",
    "corruptions": "ImageNet-C",
}


@dataclass
class RunData:
    """Everything the report renders."""

    params: dict[str, Any]
    provenance: dict[str, Any]
    cells: pd.DataFrame
    comparisons: pd.DataFrame | None
    extra_tables: dict[str, pd.DataFrame]
    figures: dict[str, list[Path]] = field(default_factory=dict)
    #: (model, dataset, manipulation) -> the registered function's family (column groups)
    families: dict[tuple[str, str, str], str] = field(default_factory=dict)
    severity: pd.DataFrame | None = None  # plots/severity.csv
    word_pairs: pd.DataFrame | None = None  # plots/word_pairs.csv
    corruption_summary: dict[str, Any] = field(default_factory=dict)  # summary.json's

    @property
    def random_weights(self) -> bool:
        return bool(self.cells["random_weights"].any()) if len(self.cells) else False

    @property
    def changes(self) -> pd.DataFrame:
        """Every metric of every manipulated cell against ``original``
        (:func:`cliprobe.metrics.changes.change_table`)."""
        return change_table(self.cells, self.comparisons)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(model, dataset) in run order."""
        return list(dict.fromkeys(zip(self.cells["model"], self.cells["dataset"], strict=True)))

    def manipulations(self, model: str, dataset: str) -> list[str]:
        """The pair's manipulations, ``original`` first, then in grid order."""
        rows = self.cells[(self.cells["model"] == model) & (self.cells["dataset"] == dataset)]
        names = list(dict.fromkeys(rows["manipulation"]))
        return [paths.CLEAN, *(n for n in names if n != paths.CLEAN)] if names else []


def git_revision(root: Path = Path(".")) -> str:
    """``<commit>`` or ``<commit>+dirty``; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty.strip() else commit


def manipulation_family(function: str | None) -> str:
    """The column group of a manipulation: its registering module's family, 'other' for an
    unknown function."""
    if not function:
        return "other"
    from cliprobe.manipulations import get

    try:
        module = get(function).apply.__module__.rsplit(".", 1)[-1]
    except KeyError:
        return "other"
    return MANIPULATION_FAMILIES.get(module, module)


def _cell_files(cells: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Each cell's metrics.json (for provenance and the manipulation's function)."""
    found = {}
    for key in cells[["model", "dataset", "manipulation"]].drop_duplicates().itertuples(
            index=False, name=None):
        file = paths.cell_dir(*key) / "metrics.json"
        if file.is_file():
            found[key] = json.loads(file.read_text())
    return found


def group_figures(folder: Path) -> dict[str, list[Path]]:
    """PNG figures of ``folder`` grouped into report sections by name prefix."""
    sections: dict[str, list[Path]] = {}
    for figure in sorted(folder.glob("*.png")):
        section = next((title for prefix, title in FIGURE_SECTIONS
                        if figure.name.startswith(prefix)), "Other figures")
        sections.setdefault(section, []).append(figure)
    order = [title for _, title in FIGURE_SECTIONS] + ["Other figures"]
    return {title: sections[title] for title in dict.fromkeys(order) if title in sections}


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def collect(params: Mapping[str, Any] | None = None) -> RunData:
    """Read a finished run from the current directory; ``params`` are the settings shown
    (the report stage's own params: seed, retrieval, stats, the grid; default: params.yaml
    as it is)."""
    if params is None:
        params_file = Path("params.yaml")
        params = yaml.safe_load(params_file.read_text()) if params_file.is_file() else {}
    cells = pd.read_csv(paths.METRICS / "cells.csv")
    comparisons = _read_csv(paths.METRICS / "comparisons.csv")
    extra = {file.name: pd.read_csv(file) for file in sorted(paths.METRICS.glob("*.csv"))
             if file.name not in KNOWN_TABLES}
    files = _cell_files(cells)
    models: dict[str, Any] = {}
    for (model, _, manipulation), content in files.items():
        if manipulation == paths.CLEAN and model not in models:
            models[model] = content.get("provenance", {})
    summary_file = paths.METRICS / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    provenance = {
        "git": git_revision(),
        "models": models,
        "versions": package_versions(),
        "datasets": sorted(cells["dataset"].unique()),
        "manipulations": list(dict.fromkeys(cells["manipulation"])),
    }
    families = {key: manipulation_family((content.get("cell") or {}).get("function"))
                for key, content in files.items() if key[2] != paths.CLEAN}
    return RunData(params=dict(params or {}), provenance=provenance, cells=cells,
                   comparisons=comparisons,
                   extra_tables=extra, figures=group_figures(paths.PLOTS / "figures"),
                   families=families, severity=_read_csv(paths.PLOTS / "severity.csv"),
                   word_pairs=_read_csv(paths.PLOTS / "word_pairs.csv"),
                   corruption_summary=summary.get("corruption_summary") or {})
