"""The manifest: one row per image, the only description of a dataset later stages see.

Columns: ``image_id`` (stable, unique, the image's path inside the dataset's raw folder),
``path`` (same, relative to the raw folder), ``label`` (class name), ``class_index`` (index
into the sorted class names) and ``split``. Source-specific columns may follow, and the fetch
stage adds ``sha256``, the digest of the image's bytes (what DVC and the resumable chunks see of
the image's content).

Images of a caption dataset have no class: their ``label`` is ``""``, and the dataset's
vocabulary (``words`` in the file's info) stands in for class names where a stage needs them
(the words a typographic attack writes, the classes of the zero-shot classifier).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cliprobe.io.atomic import atomic_path

REQUIRED_COLUMNS = ("image_id", "path", "label", "class_index", "split")


def build_manifest(rows: pd.DataFrame, split: str = "all") -> pd.DataFrame:
    """Add ``class_index`` (sorted class names) and ``split``; sort by ``image_id``."""
    frame = rows.copy()
    classes = sorted(frame["label"].unique())
    index = {name: i for i, name in enumerate(classes)}
    frame["class_index"] = frame["label"].map(index).astype("int64")
    if "split" not in frame:
        frame["split"] = split
    ordered = [*REQUIRED_COLUMNS, *[c for c in frame.columns if c not in REQUIRED_COLUMNS]]
    return frame[ordered].sort_values("image_id", kind="stable").reset_index(drop=True)


def has_classes(labels: object) -> bool:
    """True when at least one image has a class (caption datasets have none)."""
    return any(str(label) for label in labels)  # type: ignore[attr-defined]


def class_vocabulary(manifest: pd.DataFrame, info: dict[str, object]) -> list[str]:
    """The dataset's class names (sorted labels), or a caption dataset's ``words``."""
    classes = sorted({str(label) for label in manifest["label"]} - {""})
    if classes:
        return classes
    return [str(word) for word in info.get("words") or []]  # type: ignore[attr-defined]


def write_manifest(frame: pd.DataFrame, path: Path, info: dict[str, object]) -> None:
    """Write the manifest with ``info`` (source, license, class names) in the file metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata.pop(b"pandas", None)
    metadata[b"cliprobe"] = json.dumps(info, sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_manifest(path: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """Read a manifest and its ``cliprobe`` metadata."""
    table = pq.read_table(path)
    info = json.loads((table.schema.metadata or {}).get(b"cliprobe", b"{}"))
    return table.to_pandas(), info
