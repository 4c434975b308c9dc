"""Seed 001's score against a remote index (the clip-retrieval knn-service, e.g. LAION-5B).

Each manipulated query embedding is sent to the service (responses cached on disk per query,
so a rerun sends nothing), the result images are downloaded (bounded concurrency, cached) and
embedded with the cell's own model, and a result counts when its embedding lies within L2
``threshold`` of the clean query image's embedding (SPEC §3). Per query: the fraction over the
results that could be downloaded and embedded (queries with none are skipped and counted); per
class the mean; the score is the mean over classes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from cliprobe.retrieval.remote_knn import KnnClient, KnnServiceConfig, download_images
from cliprobe.scores.estimates import Estimator

#: image paths -> (N, D) unit embeddings (rows for the images that loaded) and their indices
EmbedFiles = Callable[[list[Path]], tuple[np.ndarray, list[int]]]


class RemoteRetrievalConfig(KnnServiceConfig):
    """The remote backend of seed 001's score (off by default: the service is often down)."""

    enabled: bool = False
    image_cache: str = Field(default="data/cache/knn_images",
                             description="downloaded result images (reused across runs)")
    max_concurrency: int = Field(default=8, ge=1, description="downloads in flight")


def embed_files_with(model: Any, preprocess: Callable[[Any], Any],
                     encode: Callable[[Any], np.ndarray], batch_size: int = 32) -> EmbedFiles:
    """An :data:`EmbedFiles` over a loaded model (images that fail to load are left out)."""
    import torch

    from cliprobe.images import ImageSkipped, load_rgb

    def embed(paths: list[Path]) -> tuple[np.ndarray, list[int]]:
        tensors, kept = [], []
        for position, path in enumerate(paths):
            try:
                tensors.append(preprocess(load_rgb(path)))
                kept.append(position)
            except ImageSkipped:
                continue
        if not tensors:
            return np.zeros((0, 0), dtype=np.float32), []
        chunks = [encode(torch.stack(tensors[i : i + batch_size]))
                  for i in range(0, len(tensors), batch_size)]
        return np.concatenate(chunks), kept

    return embed


def remote_scores(
    query_vectors: np.ndarray,
    clean_vectors: np.ndarray,
    labels: np.ndarray,
    config: RemoteRetrievalConfig,
    threshold: float,
    embed_files: EmbedFiles,
    estimate: Estimator,
    client: KnnClient | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, facts) of seed 001's score against the remote index."""
    from cliprobe.metrics import retrieval as rm  # here: the params schema imports this module

    client = client or KnnClient(config)
    results = client.query_many(query_vectors)
    urls = [r["url"] for rows in results for r in rows if r.get("url")]
    report = download_images(urls, config.image_cache, config.max_concurrency, config.timeout_s)
    path_of = {r.url: Path(r.path) for r in report.results if r.ok and r.path}
    accuracy = np.full(len(query_vectors), np.nan)
    embedded_total = 0
    for row, rows in enumerate(results):
        files = [path_of[r["url"]] for r in rows if r.get("url") in path_of]
        if not files:
            continue
        vectors, kept = embed_files(files)
        if not kept:
            continue
        embedded_total += len(kept)
        accuracy[row] = rm.seed001_query_accuracy(vectors[None], clean_vectors[row][None],
                                                  threshold)[0]
    scored = ~np.isnan(accuracy)
    per_class = rm.class_means(accuracy[scored], labels[scored]) if scored.any() else None
    metrics = {}
    if per_class is not None:
        metrics["seed001_accuracy_remote"] = estimate(
            "seed001_accuracy_remote", per_class.to_numpy(), "classes")
    facts = {
        "endpoint": client.endpoint, "indice_name": config.indice_name,
        "num_images": config.num_images, "requests_sent": client.requests_sent,
        "cache_hits": client.cache_hits, "results": len(urls),
        "downloaded": report.n_ok, "download_failures": report.n_failed,
        "failure_reasons": report.failure_reasons(), "embedded": embedded_total,
        "queries_scored": int(scored.sum()), "queries_without_results": int((~scored).sum()),
    }
    return metrics, facts
