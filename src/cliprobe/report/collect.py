"""Gather what a report shows from a finished run's files (never from raw embeddings).

Everything is discovered from files, so a new metric (a column value in metrics/cells.csv), a
new table (a CSV under metrics/) or a new figure (a PNG under plots/figures) appears in the
report without code changes.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cliprobe import paths
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
#: Tables with their own section (everything else under metrics/ goes to "More tables").
KNOWN_TABLES = {"cells.csv", "comparisons.csv", "seed001_table.csv"}


@dataclass
class RunData:
    """Everything the report renders."""

    params: dict[str, Any]
    provenance: dict[str, Any]
    cells: pd.DataFrame
    comparisons: pd.DataFrame | None
    extra_tables: dict[str, pd.DataFrame]
    figures: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def random_weights(self) -> bool:
        return bool(self.cells["random_weights"].any()) if len(self.cells) else False


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


def _cell_provenance(cells: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model: weights, tag, precision, from the first cell's metrics.json."""
    models: dict[str, dict[str, Any]] = {}
    for model, dataset in cells[["model", "dataset"]].drop_duplicates().itertuples(index=False):
        if model in models:
            continue
        file = paths.cell_dir(model, dataset, paths.CLEAN) / "metrics.json"
        if file.is_file():
            models[model] = json.loads(file.read_text())["provenance"]
    return models


def group_figures(folder: Path) -> dict[str, list[Path]]:
    """PNG figures of ``folder`` grouped into report sections by name prefix."""
    sections: dict[str, list[Path]] = {}
    for figure in sorted(folder.glob("*.png")):
        section = next((title for prefix, title in FIGURE_SECTIONS
                        if figure.name.startswith(prefix)), "Other figures")
        sections.setdefault(section, []).append(figure)
    order = [title for _, title in FIGURE_SECTIONS] + ["Other figures"]
    return {title: sections[title] for title in dict.fromkeys(order) if title in sections}


def collect(params_file: Path = Path("params.yaml")) -> RunData:
    """Read a finished run from the current directory."""
    cells = pd.read_csv(paths.METRICS / "cells.csv")
    comparisons_file = paths.METRICS / "comparisons.csv"
    comparisons = pd.read_csv(comparisons_file) if comparisons_file.is_file() else None
    extra = {file.name: pd.read_csv(file) for file in sorted(paths.METRICS.glob("*.csv"))
             if file.name not in KNOWN_TABLES}
    params = yaml.safe_load(params_file.read_text()) if params_file.is_file() else {}
    provenance = {
        "git": git_revision(),
        "models": _cell_provenance(cells),
        "versions": package_versions(),
        "datasets": sorted(cells["dataset"].unique()),
        "manipulations": list(dict.fromkeys(cells["manipulation"])),
    }
    return RunData(params=params, provenance=provenance, cells=cells, comparisons=comparisons,
                   extra_tables=extra, figures=group_figures(paths.PLOTS / "figures"))
