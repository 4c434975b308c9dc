"""Retrieval robustness metrics (SPEC §3).

All inputs are arrays; queries are manipulated images, the gallery is the dataset's clean
embeddings, and ``own`` maps each query to its own clean image in the gallery.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def seed001_query_accuracy(
    neighbour_vectors: np.ndarray, clean_query_vectors: np.ndarray, threshold: float
) -> np.ndarray:
    """Seed 001's per-query accuracy: the fraction of neighbours within L2 ``threshold``.

    ``neighbour_vectors`` is ``(Q, N, D)`` (the N retrieved items' embeddings),
    ``clean_query_vectors`` ``(Q, D)``: the *unmanipulated* query image's embedding. The
    distance is ``||e(r) - e(x_clean)||_2``; a result counts when it is strictly below the
    threshold. Returns ``(Q,)`` float64 in [0, 1].
    """
    distances = np.linalg.norm(
        neighbour_vectors.astype(np.float64) - clean_query_vectors[:, None, :].astype(np.float64),
        axis=-1,
    )
    return (distances < threshold).mean(axis=1)


def seed001_neighbours(
    neighbours: np.ndarray, own: np.ndarray, n: int, leave_one_out: bool = True
) -> np.ndarray:
    """The ``n`` neighbours seed 001's score looks at, per query: ``(Q, n)`` gallery indices.

    ``neighbours`` ``(Q, M)`` is each query's ranking (best first, ``M >= n + 1``), ``own``
    ``(Q,)`` the query's own clean image in the gallery. Leave-one-out (the default) drops the
    own image from the ranking before taking the first ``n`` (seed 001 queried LAION-5B, which
    does not hold the query photo); otherwise the first ``n`` as ranked, own image included.
    """
    ranking = np.asarray(neighbours)
    if not leave_one_out:
        return ranking[:, :n]
    if ranking.shape[1] < n + 1:
        raise ValueError(f"leave-one-out needs {n + 1} ranked neighbours, got {ranking.shape[1]}")
    keep = ranking != np.asarray(own)[:, None]
    # each row keeps its order; rows that never retrieved the own image drop their last item
    return np.stack([row[mask][:n] for row, mask in zip(ranking, keep, strict=True)])


def class_means(values: np.ndarray, labels: np.ndarray) -> pd.Series:
    """Mean of ``values`` per label (sorted by label)."""
    return pd.Series(np.asarray(values, dtype=np.float64)).groupby(np.asarray(labels)).mean()


def mean_of_class_means(values: np.ndarray, labels: np.ndarray) -> float:
    """Seed 001's dataset score: the mean over classes of the per-class mean."""
    return float(class_means(values, labels).mean())


def own_image_rank(neighbours: np.ndarray, own: np.ndarray) -> np.ndarray:
    """0-based rank of each query's own clean image among its neighbours, -1 when absent."""
    hits = neighbours == own[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def recall_at_k(first_hit_rank: np.ndarray, k: int) -> np.ndarray:
    """Per query: 1.0 when a relevant item is within the top k (rank < k), else 0.0."""
    return ((first_hit_rank >= 0) & (first_hit_rank < k)).astype(np.float64)


def first_same_class_rank(
    neighbours: np.ndarray, own: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray
) -> np.ndarray:
    """0-based rank of the first same-class neighbour other than the query's own image.

    The own image is removed from the ranking first (ranks close up behind it), so a
    manipulated query cannot score by finding its own clean copy. -1 when none is retrieved.
    """
    ranks = np.full(len(neighbours), -1, dtype=np.int64)
    for row, (items, own_index, label) in enumerate(zip(neighbours, own, query_labels,
                                                        strict=True)):
        others = items[items != own_index]
        matches = np.flatnonzero(gallery_labels[others] == label)
        if len(matches):
            ranks[row] = matches[0]
    return ranks


def cosine_drift(clean: np.ndarray, manipulated: np.ndarray) -> np.ndarray:
    """Per image ``cos(e(x), e(T(x)))`` of L2-normalised embeddings, ``(N,)`` float64."""
    return np.einsum("nd,nd->n", clean.astype(np.float64), manipulated.astype(np.float64))
