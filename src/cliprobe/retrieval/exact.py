"""Exact top-k search by blocked matrix products.

Both queries and gallery are processed in blocks, so memory is O(block_q x block_g) however
large the gallery (a 1M x 768 gallery never needs a 1M x 1M matrix, nor even Q x 1M).
"""

from __future__ import annotations

import numpy as np


def _best(similarities: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest similarities, best first; ties go to the smaller gallery index.

    ``argpartition`` alone picks an arbitrary subset of the items tied at the k-th value, so
    rows with more tied candidates than places are settled by a full (similarity, index) sort
    of their candidates. Such rows are rare with real embeddings (duplicate images).
    """
    if similarities.shape[1] > k:
        part = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(similarities, part, axis=1).min(axis=1)
        candidates = similarities >= kth[:, None]
        for row in np.flatnonzero(candidates.sum(axis=1) > k):
            columns = np.flatnonzero(candidates[row])
            ranked = np.lexsort((indices[row, columns], -similarities[row, columns]))
            part[row] = columns[ranked[:k]]
        similarities = np.take_along_axis(similarities, part, axis=1)
        indices = np.take_along_axis(indices, part, axis=1)
    order = np.lexsort((indices, -similarities), axis=1)
    return (np.take_along_axis(similarities, order, axis=1),
            np.take_along_axis(indices, order, axis=1))


def top_k(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    query_block: int = 1024,
    gallery_block: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(Q, k)`` int64 and inner-product similarities ``(Q, k)`` float32 of the top k.

    Vectors are expected L2-normalised, so similarity is cosine. Rows are sorted by decreasing
    similarity; equal similarities by increasing gallery index, also among the items tied at
    the k-th place.
    """
    if k > len(gallery):
        raise ValueError(f"k={k} is larger than the gallery ({len(gallery)} items)")
    queries = np.asarray(queries, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    out_idx = np.empty((len(queries), k), dtype=np.int64)
    out_sim = np.empty((len(queries), k), dtype=np.float32)
    for q0 in range(0, len(queries), query_block):
        block = queries[q0 : q0 + query_block]
        best_sim = np.empty((len(block), 0), dtype=np.float32)
        best_idx = np.empty((len(block), 0), dtype=np.int64)
        for g0 in range(0, len(gallery), gallery_block):
            sims = block @ gallery[g0 : g0 + gallery_block].T
            idx = np.broadcast_to(np.arange(g0, g0 + sims.shape[1], dtype=np.int64), sims.shape)
            sims, idx = _best(sims, np.ascontiguousarray(idx), min(k, sims.shape[1]))
            best_sim, best_idx = _best(
                np.concatenate([best_sim, sims], axis=1), np.concatenate([best_idx, idx], axis=1),
                min(k, best_sim.shape[1] + sims.shape[1]),
            )
        out_sim[q0 : q0 + len(block)] = best_sim
        out_idx[q0 : q0 + len(block)] = best_idx
    return out_idx, out_sim
