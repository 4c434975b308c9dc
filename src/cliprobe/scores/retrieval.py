"""Retrieval scores of one cell (SPEC §3, §6): manipulated queries against the clean gallery.

The search space is the embedding after the optional PCA (fitted on the gallery, SPEC §6), and
the search uses the configured index (exact by default; FAISS flat / IVF / HNSW, whose recall
against exact search is reported). Seed 001's distances are always measured between CLIP
embeddings, as the seed defines them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from cliprobe.config.schema import RetrievalConfig
from cliprobe.datasets.manifest import has_classes
from cliprobe.errors import ConfigError, DataError
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics import ranking
from cliprobe.metrics import retrieval as rm
from cliprobe.retrieval import top_k
from cliprobe.retrieval.indexes import approximate_recall, build_index_from_config
from cliprobe.retrieval.postprocess import (
    apply_pca,
    cluster_retrieval,
    clustering_scores,
    fit_kmeans,
)
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
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Metrics, per-image columns, the neighbour table and index / clustering facts."""
    depth = max(settings.neighbours, *settings.recall_k)
    if depth > len(gallery):
        raise ConfigError(
            f"invalid configuration at retrieval.neighbours/recall_k: {depth} neighbours "
            f"requested but the gallery of {estimate.cell_key} holds {len(gallery)} images"
        )
    leave_one_out = settings.seed001_own_image == "exclude"
    if leave_one_out and settings.neighbours >= len(gallery):
        raise ConfigError(
            f"invalid configuration at retrieval.neighbours: seed 001's leave-one-out score "
            f"needs {settings.neighbours} neighbours besides the query's own image, but the "
            f"gallery of {estimate.cell_key} holds {len(gallery)} images; lower "
            "retrieval.neighbours or set retrieval.seed001_own_image=include"
        )
    query_vectors = queries.vectors[rows]
    clean_vectors = gallery.vectors[own]
    labels = queries.labels[rows]
    space_gallery, space_queries = apply_pca(settings.pca, gallery.vectors, query_vectors)
    index = build_index_from_config(settings.index, space_gallery)
    width = min(max(depth + 1, settings.ranking_depth), len(gallery))
    ranking_full, similarity_full = index.search(space_queries, width)
    neighbours, similarity = ranking_full[:, : depth + 1], similarity_full[:, : depth + 1]
    facts: dict[str, Any] = {"index": settings.index.kind, "pca": settings.pca.enabled,
                             "search_dim": int(space_gallery.shape[1]), "ranking_depth": width}
    if settings.index.kind != "exact":
        exact, _ = top_k(space_queries, space_gallery, depth)
        facts["approximate_recall"] = {
            f"at_{k}": approximate_recall(neighbours, exact, k) for k in settings.recall_k}

    first_n = rm.seed001_neighbours(neighbours, own, settings.neighbours, leave_one_out)
    accuracy = rm.seed001_query_accuracy(gallery.vectors[first_n], clean_vectors,
                                         settings.threshold)
    facts["seed001"] = {
        "own_image": ("excluded (leave-one-out)" if leave_one_out
                      else "included (adds up to 1/N)"),
        "neighbours": settings.neighbours, "threshold": settings.threshold,
        "index": "the dataset's clean gallery"}
    own_rank = rm.own_image_rank(neighbours[:, :depth], own)
    class_rank = (rm.first_same_class_rank(neighbours, own, gallery.labels, labels)
                  if has_classes(labels) else np.full(len(rows), -1, dtype=np.int64))
    drift = rm.cosine_drift(clean_vectors, query_vectors)

    # Images without a class (caption datasets) have no same-class metric, and seed 001's
    # mean of class means is then the mean over images (each image its own cluster).
    classes = has_classes(labels)
    seed001 = (estimate("seed001_accuracy", rm.class_means(accuracy, labels).to_numpy(),
                        "classes") if classes else estimate("seed001_accuracy", accuracy))
    metrics: dict[str, Any] = {
        "seed001_accuracy": seed001,
        "cosine_drift": estimate("cosine_drift", drift),
    }
    for k in settings.recall_k:
        metrics[f"recall_own_at_{k}"] = estimate(f"recall_own_at_{k}", rm.recall_at_k(own_rank, k))
        if classes:
            metrics[f"recall_class_at_{k}"] = estimate(
                f"recall_class_at_{k}", rm.recall_at_k(class_rank, k)
            )
    gallery_labels = gallery.labels.astype(str)
    ap_class = (ranking.same_class_average_precision(ranking_full, own, gallery_labels,
                                                     labels.astype(str))
                if classes else np.full(len(rows), np.nan))
    ap_own = ranking.own_image_average_precision(ranking_full, own)
    if classes:
        metrics["map_class"] = estimate("map_class", ap_class)
    metrics["map_own"] = estimate("map_own", ap_own)
    for k in settings.recall_k if classes else []:
        metrics[f"mp_class_at_{k}"] = estimate(
            f"mp_class_at_{k}", ranking.same_class_precision_at_k(
                ranking_full, own, gallery_labels, labels.astype(str), k))
    if settings.kmeans.enabled:
        clusters = fit_kmeans(space_gallery, min(settings.kmeans.k, len(gallery)),
                              settings.kmeans.seed, settings.kmeans.n_init)
        facts["clustering"] = {"k": len(clusters.centroids),
                               **clustering_scores(clusters.assignments, gallery_labels)}
        coarse, _ = cluster_retrieval(space_queries, space_gallery, clusters, depth)
        coarse_rank = rm.own_image_rank(coarse, own)
        for k in settings.recall_k:
            metrics[f"kmeans_recall_own_at_{k}"] = estimate(
                f"kmeans_recall_own_at_{k}", rm.recall_at_k(coarse_rank, k))
    per_image = pd.DataFrame({
        "image_id": queries.image_ids[rows].astype(str),
        "label": labels.astype(str),
        "seed001_accuracy": accuracy,
        "own_rank": own_rank,
        "class_rank": class_rank,
        "cosine_drift": drift,
        "ap_class": ap_class,
        "ap_own": ap_own,
    })
    neighbour_table = pd.DataFrame({
        "image_id": np.repeat(per_image["image_id"].to_numpy(), neighbours.shape[1]),
        "rank": np.tile(np.arange(neighbours.shape[1]), len(rows)),
        "neighbour_id": gallery.image_ids[neighbours.reshape(-1)].astype(str),
        "similarity": similarity.reshape(-1),
    })
    return metrics, per_image, neighbour_table, facts


def revisited_scores(
    gallery: EmbeddingTable, queries: EmbeddingTable, manifest: pd.DataFrame,
    estimate: Estimator, kappas: tuple[int, ...] = (1, 5, 10),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Revisited Oxford / Paris mAP (Easy / Medium / Hard, Radenović et al. 2018).

    Only for datasets whose manifest carries the ground truth (``gnd_easy`` / ``gnd_hard`` /
    ``gnd_junk`` on query rows, as gallery image ids). Queries are the cell's (manipulated)
    embeddings of the query images; the gallery is the clean embeddings of the other images,
    ranked in full by exact search. The query images were cut to their bounding boxes when they
    were embedded (the reader crops rows with a ``query_box``), as the protocol prescribes.
    """
    if "gnd_easy" not in manifest:
        return {}, {}
    rows = manifest[manifest["gnd_easy"].notna()]
    gallery_rows = [i for i, image_id in enumerate(gallery.image_ids)
                    if image_id not in set(rows["image_id"])]
    position = {gallery.image_ids[i]: n for n, i in enumerate(gallery_rows)}
    query_position = {image_id: i for i, image_id in enumerate(queries.image_ids)}
    present = [r for r in rows.itertuples() if r.image_id in query_position]
    if not present or not gallery_rows:
        return {}, {"revisited": "no query or gallery image left after skips"}

    def indices(text: str | None) -> list[int]:
        return [position[i] for i in json.loads(text or "[]") if i in position]

    gnd = [{"easy": indices(r.gnd_easy), "hard": indices(r.gnd_hard),
            "junk": indices(r.gnd_junk)} for r in present]
    query_vectors = queries.vectors[[query_position[r.image_id] for r in present]]
    ranks, _ = top_k(query_vectors, gallery.vectors[gallery_rows], len(gallery_rows))
    metrics: dict[str, Any] = {}
    for protocol in ("easy", "medium", "hard"):
        result = ranking.revisited_map(ranks, gnd, protocol, kappas)
        metrics[f"revisited_map_{protocol}"] = estimate(f"revisited_map_{protocol}",
                                                        result.aps)
        for column, kappa in enumerate(kappas):
            metrics[f"revisited_mp_{protocol}_at_{kappa}"] = estimate(
                f"revisited_mp_{protocol}_at_{kappa}", result.precisions[:, column]
                if result.precisions is not None else np.array([]))
    facts = {"revisited": {"queries": len(present), "gallery": len(gallery_rows),
                           "query_boxes": "applied: each query image is cut to its bounding "
                                          "box before it is manipulated and embedded"}}
    return metrics, facts
