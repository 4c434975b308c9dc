"""Write embeddings in resumable chunks, then merge them into the final Parquet file.

Chunk ``i`` holds manifest rows ``[i * chunk_size, (i + 1) * chunk_size)`` and is written
atomically to a partial folder keyed by everything that determines its content. A killed stage
leaves its complete chunks behind; the rerun skips them and computes only the rest. The final
file is assembled chunk by chunk (one row group each), so memory stays flat in dataset size.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cliprobe.io.atomic import atomic_path
from cliprobe.io.embeddings import METADATA_KEY, embedding_schema, to_table


def partial_key(description: dict[str, Any]) -> str:
    """A short hash of everything that determines the chunks' content."""
    payload = json.dumps(description, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:20]


@dataclass
class ChunkStore:
    """The partial chunk files of one embedding output."""

    folder: Path
    chunk_size: int
    n_rows: int

    @property
    def n_chunks(self) -> int:
        return max(1, -(-self.n_rows // self.chunk_size))

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.parquet"

    def rows_of(self, index: int) -> range:
        start = index * self.chunk_size
        return range(start, min(start + self.chunk_size, self.n_rows))

    def done(self, index: int) -> bool:
        return self.chunk_path(index).is_file()

    def pending(self) -> list[int]:
        return [i for i in range(self.n_chunks) if not self.done(i)]

    def write_chunk(
        self,
        index: int,
        image_ids: list[str],
        labels: list[str],
        class_indices: list[int],
        vectors: np.ndarray,
        skipped: list[dict[str, str]],
        dim: int,
        infos: list[str] | None = None,
    ) -> None:
        """Write chunk ``index`` atomically (a killed writer leaves no chunk file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        array = vectors if len(vectors) else np.zeros((0, dim), dtype=np.float32)
        table = to_table(image_ids, labels, class_indices, array, {"skipped": skipped}, infos)
        with atomic_path(self.chunk_path(index)) as tmp:
            pq.write_table(table, tmp)

    def _chunk_metadata(self, index: int) -> dict[str, Any]:
        schema = pq.read_schema(self.chunk_path(index))
        return json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))

    def skipped(self) -> list[dict[str, str]]:
        """Skipped images of all chunks, in manifest order."""
        return [entry for i in range(self.n_chunks) for entry in self._chunk_metadata(i)["skipped"]]

    def iter_tables(self) -> Iterator[Any]:
        for index in range(self.n_chunks):
            yield pq.read_table(self.chunk_path(index))

    def merge(self, output: Path, dim: int, metadata: dict[str, Any]) -> int:
        """Assemble all chunks into ``output`` atomically; return the number of rows written."""
        schema = embedding_schema(dim, metadata)
        rows = 0
        with atomic_path(output) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for table in self.iter_tables():
                if len(table):
                    writer.write_table(table.replace_schema_metadata(schema.metadata))
                    rows += len(table)
        return rows

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
