"""Exact top-k: the result is the stable full sort's, ties to the smaller gallery index."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.retrieval.exact import top_k


def reference(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort every row in full by (decreasing similarity, increasing index): the definition."""
    similarities = queries.astype(np.float32) @ gallery.astype(np.float32).T
    order = np.stack([np.lexsort((np.arange(len(gallery)), -row))[:k] for row in similarities])
    return order, np.take_along_axis(similarities, order, axis=1)


@pytest.mark.parametrize("blocks", [(1024, 65536), (3, 7), (5, 1)])
def test_ties_go_to_the_smaller_gallery_index(blocks: tuple[int, int]) -> None:
    """Many exactly tied scores (a gallery of repeated vectors, like duplicate images): the k
    returned must be the smallest indices among those tied at the k-th place."""
    rng = np.random.default_rng(0)
    # small integers: every product is exact in float32 whatever the blocks, so ties are exact
    distinct = rng.integers(-2, 3, size=(4, 8)).astype(np.float32)
    gallery = distinct[rng.integers(0, 4, size=60)]  # 60 items, 4 distinct vectors
    queries = np.concatenate([distinct, rng.integers(-2, 3, size=(20, 8)).astype(np.float32)])
    for k in (1, 5, 13, 31, 60):
        indices, similarities = top_k(queries, gallery, k, *blocks)
        expected_indices, expected_similarities = reference(queries, gallery, k)
        np.testing.assert_array_equal(indices, expected_indices, err_msg=f"k={k}")
        np.testing.assert_array_equal(similarities, expected_similarities)


def test_all_scores_equal_returns_the_first_k() -> None:
    gallery = np.ones((50, 4), dtype=np.float32) / 2.0
    indices, _ = top_k(np.ones((3, 4), dtype=np.float32) / 2.0, gallery, 10, 2, 16)
    np.testing.assert_array_equal(indices, np.tile(np.arange(10), (3, 1)))


def test_without_ties_the_ranking_is_by_similarity() -> None:
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((200, 16)).astype(np.float32)
    queries = rng.standard_normal((9, 16)).astype(np.float32)
    indices, similarities = top_k(queries, gallery, 25, 4, 33)
    expected_indices, expected_similarities = reference(queries, gallery, 25)
    np.testing.assert_array_equal(indices, expected_indices)
    # blocked products may round differently from one product of the whole gallery
    np.testing.assert_allclose(similarities, expected_similarities, rtol=1e-6, atol=1e-6)
    assert (np.diff(similarities, axis=1) <= 0).all()


def test_k_larger_than_the_gallery_is_refused() -> None:
    with pytest.raises(ValueError, match="larger than the gallery"):
        top_k(np.ones((1, 2)), np.ones((3, 2)), 4)
