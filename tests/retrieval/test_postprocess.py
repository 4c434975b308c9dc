"""PCA fitted on the gallery, k-means scores, and the cluster-retrieval baseline."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cliprobe.retrieval.exact import top_k
from cliprobe.retrieval.postprocess import (
    KMeansConfig,
    PCAConfig,
    PCAProjector,
    apply_pca,
    cluster_retrieval,
    clustering_scores,
    fit_kmeans,
)


def _clusters(seed: int = 0, per: int = 30, n_classes: int = 4, dim: int = 16,
              spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_classes * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(n_classes), per)


def test_pca_output_is_unit_norm_and_reduced() -> None:
    gallery, _ = _clusters()
    queries = gallery[:7] + 0.01
    projector = PCAProjector(n_components=5).fit(gallery)
    out = projector.transform(queries)
    assert out.shape == (7, 5) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert 0.0 < projector.explained_variance_ratio <= 1.0


def test_pca_is_fitted_on_the_gallery_only() -> None:
    gallery, _ = _clusters()
    queries = np.random.default_rng(5).standard_normal((10, 16)).astype(np.float32)
    g1, q1 = apply_pca(PCAConfig(enabled=True, n_components=4), gallery, queries)
    g2, q2 = apply_pca(PCAConfig(enabled=True, n_components=4), gallery, queries * 3.0 + 1.0)
    np.testing.assert_array_equal(g1, g2)  # queries never move the projection
    assert not np.allclose(q1, q2)


def test_pca_components_are_clipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    gallery, _ = _clusters(per=3)  # 12 samples x 16 dims -> at most 12 components
    with caplog.at_level(logging.WARNING):
        projector = PCAProjector(n_components=100).fit(gallery)
    assert projector.n_components == 12
    assert "n_components=100" in caplog.text


def test_whitening_equalises_component_variances() -> None:
    gallery, _ = _clusters(seed=1)
    from sklearn.decomposition import PCA

    plain = PCA(n_components=3).fit_transform(gallery)
    white = PCA(n_components=3, whiten=True).fit_transform(gallery)
    assert plain.std(axis=0).max() / plain.std(axis=0).min() > 1.2
    np.testing.assert_allclose(white.std(axis=0, ddof=1), 1.0, rtol=1e-4)
    out = PCAProjector(3, whiten=True).fit_transform(gallery)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_disabled_pca_is_identity() -> None:
    gallery, _ = _clusters()
    g, q = apply_pca(PCAConfig(), gallery, gallery[:3])
    np.testing.assert_array_equal(g, gallery)
    np.testing.assert_array_equal(q, gallery[:3])


def test_kmeans_recovers_separated_classes_and_is_seeded() -> None:
    gallery, labels = _clusters()
    config = KMeansConfig(enabled=True, k=4, n_init=3, seed=0)
    first = fit_kmeans(gallery, config.k, config.seed, config.n_init)
    again = fit_kmeans(gallery, config.k, config.seed, config.n_init)
    np.testing.assert_array_equal(first.assignments, again.assignments)
    scores = clustering_scores(first.assignments, labels)
    assert scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    np.testing.assert_array_equal(first.assign(gallery), first.assignments)


def test_clustering_scores_of_a_random_partition_are_low() -> None:
    labels = np.repeat(np.arange(5), 40)
    random = np.random.default_rng(0).integers(0, 5, size=200)
    scores = clustering_scores(random, labels)
    assert scores["nmi"] < 0.1 and abs(scores["ari"]) < 0.05


def test_kmeans_k_is_clipped_to_the_gallery(caplog: pytest.LogCaptureFixture) -> None:
    gallery, _ = _clusters(per=2)
    with caplog.at_level(logging.WARNING):
        result = fit_kmeans(gallery, k=50, n_init=1)
    assert result.k == len(gallery)


def test_cluster_retrieval_ranks_the_query_cluster_first() -> None:
    gallery, _ = _clusters(per=5, n_classes=3, spread=0.3)
    kmeans = fit_kmeans(gallery, k=3, seed=0, n_init=2)
    queries = gallery[[0, 6, 12]] + 0.05
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = 8  # more than a cluster holds, so the tail comes from other clusters
    idx, sim = cluster_retrieval(queries, gallery, kmeans, k)
    assert idx.shape == (3, k) and idx.dtype == np.int64 and sim.dtype == np.float32
    query_clusters = kmeans.assign(queries)
    for row in range(3):
        members = kmeans.assignments[idx[row]] == query_clusters[row]
        n_in = int((kmeans.assignments == query_clusters[row]).sum())
        assert members[: min(n_in, k)].all() and not members[min(n_in, k):].any()
        # within each part, decreasing similarity; similarities are the true inner products
        assert np.all(np.diff(sim[row, :n_in]) <= 1e-6)
        np.testing.assert_allclose(sim[row], gallery[idx[row]] @ queries[row], rtol=1e-5)
        assert len(set(idx[row].tolist())) == k


def test_cluster_retrieval_with_one_cluster_is_exact_search() -> None:
    gallery, _ = _clusters()
    kmeans = fit_kmeans(gallery, k=1, n_init=1)
    idx, _ = cluster_retrieval(gallery[:5], gallery, kmeans, 10)
    np.testing.assert_array_equal(idx, top_k(gallery[:5], gallery, 10)[0])
