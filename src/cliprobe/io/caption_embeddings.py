"""The caption embedding file: one row per caption (ids + L2-normalised text embedding)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cliprobe.io.embeddings import column_to_vectors, vectors_to_column

METADATA_KEY = b"cliprobe"


def write_caption_embeddings(path: Path, caption_ids: list[str], image_ids: list[str],
                             vectors: np.ndarray, metadata: dict[str, Any]) -> None:
    """Write ``(C, D)`` caption embeddings with their caption and image ids."""
    table = pa.Table.from_arrays(
        [pa.array(caption_ids, type=pa.string()), pa.array(image_ids, type=pa.string()),
         vectors_to_column(vectors)],
        names=["caption_id", "image_id", "embedding"],
    ).replace_schema_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    pq.write_table(table, path)


@dataclass
class CaptionEmbeddings:
    """Caption ids, their images' ids and ``(C, D)`` float32 unit vectors."""

    caption_ids: np.ndarray
    image_ids: np.ndarray
    vectors: np.ndarray
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return len(self.caption_ids)


def read_caption_embeddings(path: Path) -> CaptionEmbeddings:
    """Read a file written by :func:`write_caption_embeddings`."""
    table = pq.read_table(path)
    return CaptionEmbeddings(
        caption_ids=np.asarray(table.column("caption_id").to_pylist(), dtype=object),
        image_ids=np.asarray(table.column("image_id").to_pylist(), dtype=object),
        vectors=column_to_vectors(table.column("embedding")),
        metadata=json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}")),
    )
