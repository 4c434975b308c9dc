"""Nearest-neighbour index backends behind one interface: exact search and FAISS.

``build_index(kind, gallery, **params)`` returns an object whose ``search(queries, k)`` gives
``(indices, similarities)`` exactly like :func:`cliprobe.retrieval.exact.top_k`: ``(Q, k)``
int64 gallery row numbers and ``(Q, k)`` float32 inner products, each row sorted by decreasing
similarity. Vectors are expected L2-normalised (inner product = cosine); every backend uses
inner product, never L2, so the numbers are comparable across backends.

Kinds:

- ``exact``: blocked matrix products (:func:`~cliprobe.retrieval.exact.top_k`), the default.
- ``faiss_flat``: ``faiss.IndexFlatIP``, exhaustive; the same neighbours as ``exact`` up to
  float rounding and tie order.
- ``faiss_ivf``: ``faiss.IndexIVFFlat`` with ``nlist`` inverted lists whose coarse quantiser is
  trained (k-means, seeded by ``seed``) on the gallery itself; ``nprobe`` lists visited per query.
- ``faiss_hnsw``: ``faiss.IndexHNSWFlat`` with ``M`` links per node, ``efConstruction`` and
  ``efSearch`` beam widths.

An approximate index may find fewer than ``k`` results for a query (an IVF query whose visited
lists hold fewer than ``k`` items); those slots hold index ``-1`` and similarity ``-inf``.
:func:`approximate_recall` measures how many of the exact top ``k`` an approximate index returns.

FAISS is imported only when a FAISS kind is built (``pip install faiss-cpu``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cliprobe.errors import CliprobeError
from cliprobe.retrieval.exact import top_k

LOGGER = logging.getLogger(__name__)

IndexKind = Literal["exact", "faiss_flat", "faiss_ivf", "faiss_hnsw"]
INDEX_KINDS: tuple[str, ...] = ("exact", "faiss_flat", "faiss_ivf", "faiss_hnsw")


class FaissMissingError(CliprobeError):
    """A FAISS index was requested but the faiss package is not installed."""


class IndexConfig(BaseModel):
    """Which index backend to search with, and its parameters (ignored by other kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IndexKind = Field(default="exact", description="exact | faiss_flat | faiss_ivf | "
                            "faiss_hnsw")
    nlist: int = Field(default=100, ge=1, description="faiss_ivf: number of inverted lists "
                       "(clipped to the gallery size)")
    nprobe: int = Field(default=8, ge=1, description="faiss_ivf: lists visited per query")
    M: int = Field(default=32, ge=2, description="faiss_hnsw: links per node")
    efConstruction: int = Field(default=40, ge=1, description="faiss_hnsw: build beam width")
    efSearch: int = Field(default=64, ge=1, description="faiss_hnsw: search beam width")
    seed: int = Field(default=0, description="faiss_ivf: seed of the coarse k-means")

    def params(self) -> dict[str, int]:
        """The keyword arguments :func:`build_index` takes for this kind."""
        keys = {
            "exact": (),
            "faiss_flat": (),
            "faiss_ivf": ("nlist", "nprobe", "seed"),
            "faiss_hnsw": ("M", "efConstruction", "efSearch"),
        }[self.kind]
        return {key: getattr(self, key) for key in keys}


class Index(Protocol):
    """What every backend offers."""

    kind: str
    size: int

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, k)`` int64 indices and ``(Q, k)`` float32 similarities, best first."""
        ...


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise FaissMissingError(
            "the FAISS index backends need the faiss package, which is not installed: run "
            "`pip install faiss-cpu` or choose index kind 'exact'"
        ) from None
    return faiss


def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {array.shape}")
    return array


class ExactIndex:
    """Exact inner-product search by blocked matrix products (no preprocessing)."""

    kind = "exact"

    def __init__(self, gallery: np.ndarray, query_block: int = 1024,
                 gallery_block: int = 65536) -> None:
        self.gallery = _as_matrix(gallery, "gallery")
        self.size = len(self.gallery)
        self.query_block = query_block
        self.gallery_block = gallery_block

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of each query row: ``(Q, k)`` int64 indices, ``(Q, k)`` float32 sims."""
        return top_k(_as_matrix(queries, "queries"), self.gallery, k,
                     query_block=self.query_block, gallery_block=self.gallery_block)


class FaissIndex:
    """A FAISS inner-product index holding the gallery (built by :func:`build_index`)."""

    def __init__(self, kind: str, index: Any, size: int, params: dict[str, Any]) -> None:
        self.kind = kind
        self.index = index
        self.size = size
        self.params = params
        self.keepalive: list[Any] = []

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of each query row: ``(Q, k)`` int64 indices, ``(Q, k)`` float32 sims.

        Missing results (fewer than ``k`` found) are index -1 with similarity -inf.
        """
        if k > self.size:
            raise ValueError(f"k={k} is larger than the gallery ({self.size} items)")
        queries = _as_matrix(queries, "queries")
        similarities, indices = self.index.search(queries, k)
        indices = indices.astype(np.int64, copy=False)
        similarities = similarities.astype(np.float32, copy=False)
        similarities[indices < 0] = -np.inf
        return indices, similarities


def _build_faiss(kind: str, gallery: np.ndarray, params: dict[str, Any]) -> FaissIndex:
    faiss = _import_faiss()
    n, dim = gallery.shape
    keepalive: list[Any] = []  # objects the SWIG index points to but does not own
    if kind == "faiss_flat":
        index = faiss.IndexFlatIP(dim)
        used: dict[str, Any] = {}
    elif kind == "faiss_ivf":
        nlist = int(params.get("nlist", 100))
        if nlist > n:
            LOGGER.warning("faiss_ivf: nlist=%d is larger than the gallery (%d items); using %d",
                           nlist, n, n)
            nlist = n
        nprobe = min(int(params.get("nprobe", 8)), nlist)
        quantizer = faiss.IndexFlatIP(dim)
        keepalive.append(quantizer)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(params.get("seed", 0))
        # FAISS warns below 39 training points per list; the gallery is all we have.
        index.cp.min_points_per_centroid = 1
        index.train(gallery)
        index.nprobe = nprobe
        used = {"nlist": nlist, "nprobe": nprobe, "seed": int(params.get("seed", 0))}
    elif kind == "faiss_hnsw":
        m = int(params.get("M", 32))
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params.get("efConstruction", 40))
        index.hnsw.efSearch = int(params.get("efSearch", 64))
        used = {"M": m, "efConstruction": index.hnsw.efConstruction,
                "efSearch": index.hnsw.efSearch}
    else:  # pragma: no cover - guarded by build_index
        raise ValueError(kind)
    index.add(gallery)
    built = FaissIndex(kind, index, n, used)
    built.keepalive = keepalive
    return built


_ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "exact": frozenset({"query_block", "gallery_block"}),
    "faiss_flat": frozenset(),
    "faiss_ivf": frozenset({"nlist", "nprobe", "seed"}),
    "faiss_hnsw": frozenset({"M", "efConstruction", "efSearch"}),
}


def build_index(kind: str, gallery: np.ndarray, **params: Any) -> ExactIndex | FaissIndex:
    """An index of kind ``kind`` over ``gallery`` ``(N, D)`` (L2-normalised rows).

    ``params`` are the kind's parameters (see :class:`IndexConfig`); unknown ones are an error so
    a typo cannot silently fall back to a default. ``faiss_ivf`` trains its coarse quantiser on
    the gallery, so build time includes a k-means of ``nlist`` centroids.
    """
    if kind not in _ALLOWED_PARAMS:
        raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")
    unknown = set(params) - _ALLOWED_PARAMS[kind]
    if unknown:
        raise ValueError(f"index kind {kind!r} takes no parameter(s) {sorted(unknown)}; valid: "
                         f"{sorted(_ALLOWED_PARAMS[kind]) or 'none'}")
    matrix = _as_matrix(gallery, "gallery")
    if len(matrix) == 0:
        raise ValueError("cannot build an index over an empty gallery")
    if kind == "exact":
        return ExactIndex(matrix, **params)
    return _build_faiss(kind, matrix, params)


def build_index_from_config(config: IndexConfig, gallery: np.ndarray) -> ExactIndex | FaissIndex:
    """:func:`build_index` with the parameters of ``config``."""
    return build_index(config.kind, gallery, **config.params())


def approximate_recall(approx_indices: np.ndarray, exact_indices: np.ndarray, k: int) -> float:
    """Recall of an approximate index against exact search, in [0, 1].

    The mean over queries of ``|A_k ∩ E_k| / k``, where ``A_k`` and ``E_k`` are the first ``k``
    columns of ``approx_indices`` and ``exact_indices`` (both ``(Q, >=k)``; -1 never matches).
    This is the usual "k-recall@k" of ANN benchmarks; ties at the k-th exact similarity can cost
    an exhaustive FAISS index a little recall without it being wrong.
    """
    approx = np.asarray(approx_indices)[:, :k]
    exact = np.asarray(exact_indices)[:, :k]
    if approx.shape != exact.shape or approx.shape[1] != k:
        raise ValueError(f"need (Q, >={k}) arrays of equal Q, got {approx_indices.shape} and "
                         f"{exact_indices.shape}")
    if len(approx) == 0:
        return float("nan")
    found = 0
    for start in range(0, len(approx), 4096):  # bounds the (block, k, k) comparison
        a, e = approx[start : start + 4096], exact[start : start + 4096]
        found += int(((a[:, :, None] == e[:, None, :]).any(axis=2) & (a >= 0)).sum())
    return found / (len(approx) * k)
