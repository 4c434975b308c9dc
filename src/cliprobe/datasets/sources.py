"""Dataset sources: each materialises images into the dataset's raw folder and lists them.

One function per source kind, chosen by ``source.kind`` in the dataset config. A source
returns rows (``image_id``, ``path``, ``label``) and an info dict (source, license, version).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import DatasetConfig, ImageFolderSource, SampleSource
from cliprobe.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
SAMPLE_LIST = Path(__file__).with_name("sample_photos.csv")

SourceResult = tuple[pd.DataFrame, dict[str, object]]


def _safe_name(name: str) -> str:
    """A UTF-8-encodable version of a file name (non-UTF-8 bytes become \\xNN escapes)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


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


def _labels_from_csv(folder: Path, labels_csv: Path, dataset: str) -> list[tuple[Path, str]]:
    frame = pd.read_csv(labels_csv, dtype=str)
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise DataError(
            f"dataset '{dataset}': {labels_csv} lacks the column(s) {sorted(missing)}; "
            "it needs path,label"
        )
    return [(folder / row.path, row.label) for row in frame.itertuples()]


def _labels_from_subfolders(folder: Path) -> list[tuple[Path, str]]:
    pairs = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                pairs.append((file, _safe_name(class_dir.name)))
    return pairs


def fetch_image_folder(source: ImageFolderSource, dataset: str, target: Path) -> SourceResult:
    """Link (or copy) a user's folder of images into the raw folder."""
    folder = Path(source.path).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset '{dataset}': folder {folder} does not exist; set "
            f"dataset.{dataset}.source.path to a folder of class sub-folders or of images "
            "with a labels CSV"
        )
    if source.labels_csv:
        pairs = _labels_from_csv(folder, Path(source.labels_csv).expanduser(), dataset)
    else:
        pairs = _labels_from_subfolders(folder)
    rows = []
    for file, label in pairs:
        if not file.is_file():
            raise DataError(f"dataset '{dataset}': listed image {file} does not exist")
        image_id = _safe_name(file.relative_to(folder).as_posix())
        _link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": label})
    if not rows:
        raise DataError(
            f"dataset '{dataset}': no images found under {folder} (expected class sub-folders "
            f"of {', '.join(sorted(IMAGE_SUFFIXES))} files, or set source.labels_csv)"
        )
    info = {"source": f"local folder {folder}", "license": "user-supplied", "split": "all"}
    return pd.DataFrame(rows), info


SOURCES: dict[str, Callable[..., SourceResult]] = {
    "sample": fetch_sample,
    "image_folder": fetch_image_folder,
}


def materialise(config: DatasetConfig, dataset: str, target: Path) -> SourceResult:
    """Run the source named by ``config.source.kind``, writing images under ``target``."""
    return SOURCES[config.source.kind](config.source, dataset, target)
