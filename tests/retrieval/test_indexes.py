"""Index backends: one interface, exact = brute force, FAISS agrees, approximate recall."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from cliprobe.retrieval.exact import top_k
from cliprobe.retrieval.indexes import (
    FaissMissingError,
    IndexConfig,
    approximate_recall,
    build_index,
    build_index_from_config,
)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gallery = _unit(rng, 2000, 32)
    queries = _unit(rng, 50, 32)
    return gallery, queries


def test_exact_matches_top_k(data: tuple[np.ndarray, np.ndarray]) -> None:
    gallery, queries = data
    index = build_index("exact", gallery, gallery_block=300)
    idx, sim = index.search(queries, 10)
    ref_idx, ref_sim = top_k(queries, gallery, 10)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sim, ref_sim, rtol=1e-6)
    assert idx.dtype == np.int64 and sim.dtype == np.float32 and idx.shape == (50, 10)


def test_faiss_flat_is_exact(data: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("faiss")
    gallery, queries = data
    idx, sim = build_index("faiss_flat", gallery).search(queries, 10)
    ref_idx, ref_sim = top_k(queries, gallery, 10)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-5)
    assert approximate_recall(idx, ref_idx, 10) == 1.0


@pytest.mark.parametrize("kind, params", [
    ("faiss_ivf", {"nlist": 16, "nprobe": 16, "seed": 3}),  # all lists probed: exact
    ("faiss_hnsw", {"M": 16, "efConstruction": 80, "efSearch": 200}),
])
def test_approximate_indexes_with_generous_settings_find_the_exact_neighbours(
    data: tuple[np.ndarray, np.ndarray], kind: str, params: dict[str, int]
) -> None:
    pytest.importorskip("faiss")
    gallery, queries = data
    idx, sim = build_index(kind, gallery, **params).search(queries, 10)
    ref_idx, _ = top_k(queries, gallery, 10)
    assert approximate_recall(idx, ref_idx, 10) >= 0.98
    assert np.all(np.diff(sim, axis=1) <= 1e-6)  # best first


def test_ivf_with_one_probe_is_approximate_and_seeded(data: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("faiss")
    gallery, queries = data
    config = IndexConfig(kind="faiss_ivf", nlist=64, nprobe=1, seed=7)
    first = build_index_from_config(config, gallery).search(queries, 10)
    again = build_index_from_config(config, gallery).search(queries, 10)
    np.testing.assert_array_equal(first[0], again[0])
    ref_idx, _ = top_k(queries, gallery, 10)
    recall = approximate_recall(first[0], ref_idx, 10)
    assert 0.0 < recall < 1.0


def test_ivf_missing_results_are_minus_one_and_minus_inf() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    gallery = _unit(rng, 40, 8)
    # 40 lists of ~1 item, one probed: most queries find fewer than 5 results.
    idx, sim = build_index("faiss_ivf", gallery, nlist=40, nprobe=1).search(gallery[:5], 5)
    assert (idx == -1).any()
    assert np.all(np.isneginf(sim[idx == -1]))
    assert np.all(idx[:, 0] == np.arange(5))  # each item finds itself


def test_nlist_larger_than_gallery_is_clipped() -> None:
    pytest.importorskip("faiss")
    gallery = _unit(np.random.default_rng(2), 20, 8)
    index = build_index("faiss_ivf", gallery, nlist=100, nprobe=100)
    assert index.params["nlist"] == 20 and index.params["nprobe"] == 20


def test_approximate_recall_counts_overlap_per_query() -> None:
    exact = np.array([[0, 1, 2], [3, 4, 5]])
    approx = np.array([[2, 9, 0], [-1, -1, 3]])
    # query 0: {0, 2} of 3 found; query 1: {3} of 3 found -> (2/3 + 1/3) / 2
    assert approximate_recall(approx, exact, 3) == pytest.approx(0.5)
    assert approximate_recall(approx, exact, 1) == pytest.approx(0.0)


def test_unknown_kind_and_parameters_are_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    gallery, _ = data
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index("annoy", gallery)
    with pytest.raises(ValueError, match="takes no parameter"):
        build_index("faiss_hnsw", gallery, nprobe=3)


def test_missing_faiss_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_faiss(name: str, *args: object, **kwargs: object) -> object:
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(FaissMissingError, match="pip install faiss-cpu"):
        build_index("faiss_flat", np.eye(4, dtype=np.float32))
