"""A cell's retrieval scores through every index backend, PCA and k-means."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.config.schema import RetrievalConfig
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.retrieval import align, retrieval_scores


def _table(vectors: np.ndarray, labels: list[str]) -> EmbeddingTable:
    n = len(labels)
    return EmbeddingTable(np.array([f"i{k}" for k in range(n)], dtype=object),
                          np.array(labels, dtype=object), np.zeros(n, dtype=np.int64),
                          vectors.astype(np.float32), {}, np.array([""] * n, dtype=object))


@pytest.fixture(scope="module")
def cell() -> tuple[EmbeddingTable, EmbeddingTable]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    labels = [f"c{k % 4}" for k in range(80)]
    clean = np.stack([centres[k % 4] + 0.3 * rng.normal(size=16) for k in range(80)])
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    noisy = clean + 0.05 * rng.normal(size=clean.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return _table(clean, labels), _table(noisy, labels)


@pytest.mark.parametrize("kind", ["exact", "faiss_flat", "faiss_ivf", "faiss_hnsw"])
def test_every_index_backend_scores_the_cell(cell, kind: str) -> None:  # type: ignore[no-untyped-def]
    gallery, queries = cell
    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"index": {"kind": kind, "nlist": 4, "nprobe": 4}, "neighbours": 5,
         "recall_k": [1, 5]})
    metrics, per_image, neighbour_table, facts = retrieval_scores(
        gallery, queries, rows, own, settings, Estimator(0, "c", 100, 0.95))
    assert facts["index"] == kind
    assert metrics["recall_own_at_1"]["value"] >= 0.9  # small noise: own image first
    assert metrics["map_class"]["value"] > 0.5 and len(per_image) == 80
    assert set(neighbour_table["rank"]) == set(range(6))  # neighbours + 1 (own image)
    if kind != "exact":
        assert 0.0 <= facts["approximate_recall"]["at_5"] <= 1.0
    if kind in ("exact", "faiss_flat"):  # exhaustive: identical rankings
        assert facts.get("approximate_recall", {}).get("at_5", 1.0) == pytest.approx(1.0)


def test_pca_and_kmeans(cell) -> None:  # type: ignore[no-untyped-def]
    gallery, queries = cell
    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"pca": {"enabled": True, "n_components": 8}, "kmeans": {"enabled": True, "k": 4},
         "neighbours": 5, "recall_k": [1, 5]})
    metrics, _, _, facts = retrieval_scores(gallery, queries, rows, own, settings,
                                            Estimator(0, "c", 100, 0.95))
    assert facts["search_dim"] == 8 and facts["clustering"]["k"] == 4
    assert facts["clustering"]["nmi"] > 0.8  # four well separated classes
    assert "kmeans_recall_own_at_5" in metrics
