"""Exact blocked top-k search."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.retrieval import top_k


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("query_block", "gallery_block"), [(1, 1), (3, 7), (1024, 65536)])
def test_blocked_search_equals_brute_force(query_block: int, gallery_block: int) -> None:
    rng = np.random.default_rng(0)
    queries, gallery = _unit(rng, 23, 16), _unit(rng, 101, 16)
    indices, sims = top_k(queries, gallery, 9, query_block, gallery_block)
    full = queries @ gallery.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(sims, np.take_along_axis(full, expected, axis=1), rtol=1e-6)


def test_ties_go_to_the_smaller_gallery_index() -> None:
    gallery = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    indices, _ = top_k(np.array([[1, 0]], dtype=np.float32), gallery, 3, 1, 2)
    assert indices.tolist() == [[0, 2, 3]]


def test_k_larger_than_gallery_is_an_error() -> None:
    with pytest.raises(ValueError, match="larger than the gallery"):
        top_k(np.ones((1, 2), np.float32), np.ones((3, 2), np.float32), 4)
