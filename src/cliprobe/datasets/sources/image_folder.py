"""The ``image_folder`` source: a folder of class sub-folders, or images plus a labels CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cliprobe.config.schema import ImageFolderSource
from cliprobe.datasets.sources._common import (
    IMAGE_SUFFIXES,
    SourceResult,
    class_folder_pairs,
    link_or_copy,
    safe_name,
)
from cliprobe.errors import DataError


def _labels_from_csv(folder: Path, labels_csv: Path, dataset: str) -> list[tuple[Path, str]]:
    frame = pd.read_csv(labels_csv, dtype=str)
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise DataError(
            f"dataset '{dataset}': {labels_csv} lacks the column(s) {sorted(missing)}; "
            "it needs path,label"
        )
    return [(folder / row.path, row.label) for row in frame.itertuples()]


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
        pairs = class_folder_pairs(folder)
    rows = []
    for file, label in pairs:
        if not file.is_file():
            raise DataError(f"dataset '{dataset}': listed image {file} does not exist")
        image_id = safe_name(file.relative_to(folder).as_posix())
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": label})
    if not rows:
        raise DataError(
            f"dataset '{dataset}': no images found under {folder} (expected class sub-folders "
            f"of {', '.join(sorted(IMAGE_SUFFIXES))} files, or set source.labels_csv)"
        )
    info = {"source": f"local folder {folder}", "license": "user-supplied", "split": "all"}
    return pd.DataFrame(rows), info
