"""Post-processing fitted on the gallery and applied to queries: PCA(-whitening), k-means.

Seed 002 reduced CLIP features to 100-D with PCA and clustered the gallery with k-means
(SPEC §6). Everything here is *fitted on the clean gallery only* and then applied unchanged to
queries, so a manipulation cannot leak into the projection or the clusters.

- :class:`PCAProjector`: PCA to ``n_components`` dims (optionally whitened: each component
  divided by the square root of its explained variance), then every row L2-normalised again so
  inner product stays cosine. PCA first subtracts the gallery mean, so even a full-rank PCA
  changes the cosine similarities (it is a rotation of the *centred* vectors).
- :func:`fit_kmeans` / :func:`clustering_scores`: k-means of the gallery (``K`` clusters, seeded,
  ``n_init`` restarts) and its agreement with the labels (NMI, ARI from ``sklearn.metrics``).
- :func:`cluster_retrieval`: a coarse retrieval baseline: a query is assigned to its nearest
  centroid; the gallery items of that cluster come first (by decreasing similarity), then all
  other items (by decreasing similarity). It returns the same ``(indices, similarities)`` shape
  as :func:`~cliprobe.retrieval.exact.top_k`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cliprobe.retrieval.exact import top_k

LOGGER = logging.getLogger(__name__)


class PCAConfig(BaseModel):
    """PCA of the gallery embeddings, applied to gallery and queries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    n_components: int = Field(default=100, ge=1, description="target dimension (clipped to "
                              "min(gallery size, embedding dim))")
    whiten: bool = Field(default=False, description="divide each component by its standard "
                         "deviation before re-normalising")


class KMeansConfig(BaseModel):
    """k-means of the gallery embeddings: scored against labels and used as a retrieval baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    k: int = Field(default=100, ge=1, description="number of clusters (clipped to the gallery "
                   "size)")
    n_init: int = Field(default=10, ge=1, description="k-means restarts; the best inertia wins")
    seed: int = 0


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), as float32 ``(N, D)``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32, copy=False)


class PCAProjector:
    """PCA fitted on a gallery ``(N, D)``; :meth:`transform` maps ``(M, D)`` to unit ``(M, d)``.

    ``n_components`` is clipped to ``min(N, D)`` (PCA cannot have more components) with a logged
    warning. The fit is deterministic (full SVD).
    """

    def __init__(self, n_components: int = 100, whiten: bool = False) -> None:
        self.requested_components = n_components
        self.whiten = whiten
        self.n_components: int | None = None
        self._pca = None

    def fit(self, gallery: np.ndarray) -> PCAProjector:
        """Fit on ``gallery`` ``(N, D)``; returns ``self``."""
        from sklearn.decomposition import PCA

        gallery = np.asarray(gallery, dtype=np.float32)
        limit = min(gallery.shape)
        n_components = self.requested_components
        if n_components > limit:
            LOGGER.warning(
                "PCA: n_components=%d is more than min(gallery size, dim) = min(%d, %d); "
                "using %d components", n_components, gallery.shape[0], gallery.shape[1], limit,
            )
            n_components = limit
        self._pca = PCA(n_components=n_components, whiten=self.whiten, svd_solver="full")
        self._pca.fit(gallery)
        self.n_components = n_components
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project ``(M, D)`` rows and L2-normalise them: ``(M, n_components)`` float32."""
        if self._pca is None:
            raise RuntimeError("PCAProjector.transform called before fit")
        projected = self._pca.transform(np.asarray(vectors, dtype=np.float32))
        return l2_normalise(projected)

    def fit_transform(self, gallery: np.ndarray) -> np.ndarray:
        """:meth:`fit` on ``gallery`` and return its projection ``(N, n_components)``."""
        return self.fit(gallery).transform(gallery)

    @property
    def explained_variance_ratio(self) -> float:
        """Fraction of the gallery's variance kept by the fitted components."""
        if self._pca is None:
            raise RuntimeError("PCAProjector is not fitted")
        return float(self._pca.explained_variance_ratio_.sum())


def apply_pca(config: PCAConfig, gallery: np.ndarray,
              queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gallery and queries after the configured PCA (unchanged when disabled)."""
    if not config.enabled:
        return np.asarray(gallery, dtype=np.float32), np.asarray(queries, dtype=np.float32)
    projector = PCAProjector(config.n_components, config.whiten).fit(gallery)
    return projector.transform(gallery), projector.transform(queries)


@dataclass
class KMeansResult:
    """A k-means fit of a gallery: ``centroids`` ``(K, D)`` and ``assignments`` ``(N,)``."""

    centroids: np.ndarray
    assignments: np.ndarray
    inertia: float

    @property
    def k(self) -> int:
        """Number of clusters."""
        return len(self.centroids)

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """Nearest centroid (Euclidean, as k-means uses) of each row of ``(M, D)``: ``(M,)``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        centroids = self.centroids.astype(np.float32)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 does not change the argmin.
        distances = (centroids * centroids).sum(axis=1)[None, :] - 2.0 * (vectors @ centroids.T)
        return distances.argmin(axis=1).astype(np.int64)


def fit_kmeans(gallery: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> KMeansResult:
    """k-means (k-means++ init, Lloyd) of ``gallery`` ``(N, D)`` into ``k`` clusters.

    ``k`` is clipped to ``N`` with a logged warning. Deterministic for a given ``seed``.
    """
    from sklearn.cluster import KMeans

    gallery = np.asarray(gallery, dtype=np.float32)
    if k > len(gallery):
        LOGGER.warning("k-means: k=%d is more than the gallery size %d; using %d", k,
                       len(gallery), len(gallery))
        k = len(gallery)
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(gallery)
    return KMeansResult(
        centroids=model.cluster_centers_.astype(np.float32),
        assignments=model.labels_.astype(np.int64),
        inertia=float(model.inertia_),
    )


def clustering_scores(assignments: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Agreement of cluster ``assignments`` ``(N,)`` with ground-truth ``labels`` ``(N,)``.

    ``nmi``: normalised mutual information (arithmetic normalisation, sklearn's default), in
    [0, 1]; ``ari``: adjusted Rand index, 0 for chance, 1 for identical partitions.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    return {
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ari": float(adjusted_rand_score(labels, assignments)),
    }


def cluster_retrieval(queries: np.ndarray, gallery: np.ndarray, kmeans: KMeansResult,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse retrieval: the query's nearest cluster first, then the rest, each by similarity.

    ``queries`` ``(Q, D)`` and ``gallery`` ``(N, D)`` are L2-normalised and ``kmeans`` was fitted
    on ``gallery``. Returns ``(Q, k)`` int64 gallery indices and ``(Q, k)`` float32 inner-product
    similarities (the true similarities, so within a row they decrease only inside each of the
    two parts). Memory stays bounded: each cluster's queries are searched with the blocked
    :func:`~cliprobe.retrieval.exact.top_k` among that cluster's members, and only when the
    cluster has fewer than ``k`` members among the non-members too.
    """
    queries = np.asarray(queries, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    if k > len(gallery):
        raise ValueError(f"k={k} is larger than the gallery ({len(gallery)} items)")
    query_clusters = kmeans.assign(queries)
    out_idx = np.empty((len(queries), k), dtype=np.int64)
    out_sim = np.empty((len(queries), k), dtype=np.float32)
    for cluster in np.unique(query_clusters):
        rows = np.flatnonzero(query_clusters == cluster)
        inside = np.flatnonzero(kmeans.assignments == cluster)
        n_in = min(k, len(inside))
        if n_in:
            idx, sim = top_k(queries[rows], gallery[inside], n_in)
            out_idx[rows, :n_in] = inside[idx]
            out_sim[rows, :n_in] = sim
        if n_in < k:
            outside = np.flatnonzero(kmeans.assignments != cluster)
            idx, sim = top_k(queries[rows], gallery[outside], k - n_in)
            out_idx[rows, n_in:] = outside[idx]
            out_sim[rows, n_in:] = sim
    return out_idx, out_sim
