"""Retrieval scores of one cell (SPEC §3): manipulated queries against the clean gallery."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cliprobe.config.schema import RetrievalConfig
from cliprobe.errors import ConfigError, DataError
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics import retrieval as rm
from cliprobe.retrieval import top_k
from cliprobe.scores.estimates import Estimator


def align(gallery: EmbeddingTable, queries: EmbeddingTable) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``queries`` whose image is in the gallery, and each one's gallery index."""
    position = {image_id: i for i, image_id in enumerate(gallery.image_ids)}
    rows = np.array([i for i, q in enumerate(queries.image_ids) if q in position], dtype=np.int64)
    own = np.array([position[queries.image_ids[i]] for i in rows], dtype=np.int64)
    if len(rows) == 0:
        raise DataError("no query image has a clean embedding to compare with")
    return rows, own


def retrieval_scores(
    gallery: EmbeddingTable,
    queries: EmbeddingTable,
    rows: np.ndarray,
    own: np.ndarray,
    settings: RetrievalConfig,
    estimate: Estimator,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Metrics, per-image columns and the neighbour table of one cell."""
    depth = max(settings.neighbours, *settings.recall_k)
    if depth > len(gallery):
        raise ConfigError(
            f"invalid configuration at retrieval.neighbours/recall_k: {depth} neighbours "
            f"requested but the gallery of {estimate.cell_key} holds {len(gallery)} images"
        )
    query_vectors = queries.vectors[rows]
    clean_vectors = gallery.vectors[own]
    labels = queries.labels[rows]
    neighbours, similarity = top_k(query_vectors, gallery.vectors, min(depth + 1, len(gallery)))

    first_n = neighbours[:, : settings.neighbours]
    accuracy = rm.seed001_query_accuracy(gallery.vectors[first_n], clean_vectors,
                                         settings.threshold)
    own_rank = rm.own_image_rank(neighbours[:, :depth], own)
    class_rank = rm.first_same_class_rank(neighbours, own, gallery.labels, labels)
    drift = rm.cosine_drift(clean_vectors, query_vectors)

    per_class = rm.class_means(accuracy, labels)
    metrics: dict[str, Any] = {
        "seed001_accuracy": estimate("seed001_accuracy", per_class.to_numpy(), "classes"),
        "cosine_drift": estimate("cosine_drift", drift),
    }
    for k in settings.recall_k:
        metrics[f"recall_own_at_{k}"] = estimate(f"recall_own_at_{k}", rm.recall_at_k(own_rank, k))
        metrics[f"recall_class_at_{k}"] = estimate(
            f"recall_class_at_{k}", rm.recall_at_k(class_rank, k)
        )
    per_image = pd.DataFrame({
        "image_id": queries.image_ids[rows].astype(str),
        "label": labels.astype(str),
        "seed001_accuracy": accuracy,
        "own_rank": own_rank,
        "class_rank": class_rank,
        "cosine_drift": drift,
    })
    neighbour_table = pd.DataFrame({
        "image_id": np.repeat(per_image["image_id"].to_numpy(), neighbours.shape[1]),
        "rank": np.tile(np.arange(neighbours.shape[1]), len(rows)),
        "neighbour_id": gallery.image_ids[neighbours.reshape(-1)].astype(str),
        "similarity": similarity.reshape(-1),
    })
    return metrics, per_image, neighbour_table
