"""The zero-shot classifier file: one row per class (name + L2-normalised text embedding)."""

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


def write_classifier(
    path: Path, class_names: list[str], vectors: np.ndarray, metadata: dict[str, Any],
    word_queries: np.ndarray | None = None,
    prompt_names: list[str] | None = None,
) -> None:
    """Write ``(C, D)`` class embeddings with their labels (``class_name``), the name the
    prompts used for each (``prompt_name``: e.g. OpenAI's ImageNet name; default the label),
    and optionally ``(C, D)`` word query embeddings (each class's ``zeroshot.word_query``
    caption, L2-normalised)."""
    named = prompt_names if prompt_names is not None else class_names
    if len(named) != len(class_names):
        raise ValueError("one prompt name per class is needed")
    columns = [pa.array(class_names, type=pa.string()), pa.array(named, type=pa.string()),
               vectors_to_column(vectors)]
    names = ["class_name", "prompt_name", "embedding"]
    if word_queries is not None:
        columns.append(vectors_to_column(word_queries))
        names.append("word_query_embedding")
    table = pa.Table.from_arrays(columns, names=names).replace_schema_metadata(
        {METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    pq.write_table(table, path)


@dataclass
class Classifier:
    """Class names, the ``(D, C)`` weight matrix W of SPEC §2 and, when stored, the ``(C, D)``
    embeddings of each class's word query caption."""

    class_names: list[str]
    weights: np.ndarray
    metadata: dict[str, Any]
    word_queries: np.ndarray | None = None


def read_classifier(path: Path) -> Classifier:
    """Read a classifier written by :func:`write_classifier`."""
    table = pq.read_table(path)
    vectors = column_to_vectors(table.column("embedding"))
    queries = (column_to_vectors(table.column("word_query_embedding"))
               if "word_query_embedding" in table.column_names else None)
    return Classifier(
        class_names=[str(n) for n in table.column("class_name").to_pylist()],
        weights=vectors.T.copy(),
        metadata=json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}")),
        word_queries=queries,
    )
