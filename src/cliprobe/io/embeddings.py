"""The embedding table: one Parquet file per (model, dataset, manipulation) cell.

Columns: ``image_id`` (string), ``label`` (string), ``class_index`` (int64), ``info`` (JSON
string of per-image facts a manipulation recorded, e.g. the word it wrote; "" when none) and
``embedding`` (fixed-size list of float32, L2-normalised). The file's ``cliprobe`` metadata
(JSON) holds the provenance, ``n_images``, ``n_skipped`` and the skipped images with reasons
and kind (:data:`UNREADABLE`, or :data:`NOT_APPLICABLE` for an image the manipulation declined).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cliprobe.io.atomic import atomic_path

METADATA_KEY = b"cliprobe"
#: Kinds of skipped image: not a readable, valid image (``load_rgb`` refused it) ...
UNREADABLE = "unreadable"
#: ... or one the manipulation declined (``ManipulationNotApplicable``).
NOT_APPLICABLE = "not_applicable"


def vectors_to_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """``(N, D)`` vectors as an Arrow fixed-size list column of float32."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = array.shape[1] if array.ndim == 2 else 0
    return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1), type=pa.float32()), dim)


def column_to_vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size list column back as ``(N, D)`` float32."""
    combined = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = np.asarray(combined.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(len(combined), combined.type.list_size)


def embedding_schema(dim: int, metadata: dict[str, Any] | None = None) -> pa.Schema:
    """Arrow schema of an embedding table of dimension ``dim``."""
    schema = pa.schema(
        [
            ("image_id", pa.string()),
            ("label", pa.string()),
            ("class_index", pa.int64()),
            ("info", pa.string()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ]
    )
    if metadata is not None:
        schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return schema


def to_table(
    image_ids: Sequence[str],
    labels: Sequence[str],
    class_indices: Sequence[int],
    embeddings: np.ndarray,
    metadata: dict[str, Any] | None = None,
    infos: Sequence[str] | None = None,
) -> pa.Table:
    """Build an embedding table from columns; ``embeddings`` is ``(N, D)`` float32."""
    column = vectors_to_column(embeddings)
    return pa.Table.from_arrays(
        [
            pa.array(list(image_ids), type=pa.string()),
            pa.array(list(labels), type=pa.string()),
            pa.array(list(class_indices), type=pa.int64()),
            pa.array(list(infos) if infos is not None else [""] * len(image_ids),
                     type=pa.string()),
            column,
        ],
        schema=embedding_schema(column.type.list_size, metadata),
    )


def write_empty_embeddings(path: Path, dim: int, metadata: dict[str, Any]) -> None:
    """An embedding file with no rows (``n_images`` 0), its metadata saying why."""
    meta = {**metadata, "n_images": 0, "n_skipped": 0, "skipped": []}
    table = to_table([], [], [], np.zeros((0, dim), dtype=np.float32), meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


@dataclass
class EmbeddingTable:
    """An embedding file in memory: ids, labels, ``(N, D)`` float32 vectors and metadata."""

    image_ids: np.ndarray
    labels: np.ndarray
    class_indices: np.ndarray
    vectors: np.ndarray
    metadata: dict[str, Any]
    infos: np.ndarray

    def info(self, row: int) -> dict[str, Any]:
        """The per-image facts the manipulation recorded for ``row`` ({} when none)."""
        text = self.infos[row]
        return json.loads(text) if text else {}

    def __len__(self) -> int:
        return len(self.image_ids)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``cliprobe`` metadata of an embedding file, without reading its rows."""
    schema = pq.read_schema(path)
    return json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))


def read_embeddings(path: str | Path) -> EmbeddingTable:
    """Read a whole embedding file."""
    table = pq.read_table(path)
    return EmbeddingTable(
        image_ids=np.asarray(table.column("image_id").to_pylist(), dtype=object),
        labels=np.asarray(table.column("label").to_pylist(), dtype=object),
        class_indices=np.asarray(table.column("class_index").to_numpy(), dtype=np.int64),
        vectors=column_to_vectors(table.column("embedding")),
        metadata=json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}")),
        infos=np.asarray(table.column("info").to_pylist(), dtype=object),
    )
