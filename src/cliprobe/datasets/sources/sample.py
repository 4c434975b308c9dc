"""The built-in ``sample`` source: photos shipped in the scikit-image and scikit-learn wheels."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import SampleSource
from cliprobe.datasets.sources._common import SourceResult
from cliprobe.errors import DataError

SAMPLE_LIST = Path(__file__).parent.parent / "sample_photos.csv"


def fetch_sample(source: SampleSource, dataset: str, target: Path) -> SourceResult:
    """Copy the photos scikit-image and scikit-learn ship in their wheels."""
    rows = []
    with SAMPLE_LIST.open(newline="") as handle:
        for entry in csv.DictReader(handle):
            spec = importlib.util.find_spec(entry["package"])
            if spec is None or not spec.submodule_search_locations:
                raise DataError(
                    f"dataset '{dataset}' needs the package {entry['package']} installed "
                    f"(pip install scikit-image scikit-learn)"
                )
            package_dir = Path(next(iter(spec.submodule_search_locations)))
            file = package_dir / entry["resource"]
            if not file.is_file():
                raise DataError(
                    f"dataset '{dataset}': {file} is missing from the installed "
                    f"{entry['package']} package; reinstall it"
                )
            image_id = f"{entry['package']}/{file.name}"
            (target / image_id).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": entry["label"],
                         "license": entry["license"]})
    info = {"source": "photos shipped in the scikit-image and scikit-learn wheels",
            "license": "per image, see the 'license' column", "split": "all"}
    return pd.DataFrame(rows), info
