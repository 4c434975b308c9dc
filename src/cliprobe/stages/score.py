"""Stages score@<model>-<dataset>-<manipulation> and score_original@<model>-<dataset>.

Retrieves each (manipulated) query among the dataset's clean gallery, then scores the cell:
seed 001's threshold accuracy, recall@k of the own clean image and of same-class images, and
embedding drift, each with a bootstrap interval. Writes metrics.json, per_image.parquet and
neighbours.parquet into the cell's folder.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.config.schema import Params
from cliprobe.errors import ConfigError, DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path, write_json
from cliprobe.io.embeddings import EmbeddingTable, read_embeddings
from cliprobe.metrics import retrieval as rm
from cliprobe.metrics.bootstrap import bootstrap_mean
from cliprobe.provenance import package_versions
from cliprobe.retrieval import top_k
from cliprobe.seeding import derive_seed
from cliprobe.stages._common import load_cell_params, parser


def align(gallery: EmbeddingTable, queries: EmbeddingTable) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``queries`` whose image is in the gallery, and each one's gallery index."""
    position = {image_id: i for i, image_id in enumerate(gallery.image_ids)}
    rows = np.array([i for i, q in enumerate(queries.image_ids) if q in position], dtype=np.int64)
    own = np.array([position[queries.image_ids[i]] for i in rows], dtype=np.int64)
    return rows, own


def score_cell(
    gallery: EmbeddingTable, queries: EmbeddingTable, params: Params, cell_key: str
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Compute the cell's metrics, per-image table and neighbour table."""
    settings = params.retrieval
    rows, own = align(gallery, queries)
    if len(rows) == 0:
        raise DataError(f"{cell_key}: no query image has a clean embedding to compare with")
    depth = max(settings.neighbours, *settings.recall_k)
    if depth > len(gallery):
        raise ConfigError(
            f"invalid configuration at retrieval.neighbours/recall_k: {depth} neighbours "
            f"requested but the gallery of {cell_key} holds {len(gallery)} images"
        )
    query_vectors = queries.vectors[rows]
    clean_vectors = gallery.vectors[own]
    labels = queries.labels[rows]
    neighbours, similarity = top_k(query_vectors, gallery.vectors, min(depth + 1, len(gallery)))

    first_n = neighbours[:, : settings.neighbours]
    accuracy = rm.seed001_query_accuracy(gallery.vectors[first_n], clean_vectors,
                                         settings.threshold)
    own_rank = rm.own_image_rank(neighbours[:, :depth], own)
    class_rank = rm.first_same_class_rank(neighbours, own, gallery.labels, labels)
    drift = rm.cosine_drift(clean_vectors, query_vectors)

    stats = params.stats

    def estimate(name: str, values: np.ndarray, resampled: str = "images") -> dict[str, Any]:
        seed = derive_seed(params.seed, cell_key, name) % (2**32)
        return bootstrap_mean(values, stats.bootstrap_resamples, stats.confidence, seed,
                              resampled).as_dict()

    per_class = rm.class_means(accuracy, labels)
    metrics: dict[str, Any] = {
        "seed001_accuracy": estimate("seed001_accuracy", per_class.to_numpy(), "classes"),
        "cosine_drift": estimate("cosine_drift", drift),
    }
    for k in settings.recall_k:
        metrics[f"recall_own_at_{k}"] = estimate(f"recall_own_at_{k}", rm.recall_at_k(own_rank, k))
        metrics[f"recall_class_at_{k}"] = estimate(
            f"recall_class_at_{k}", rm.recall_at_k(class_rank, k)
        )
    per_image = pd.DataFrame({
        "image_id": queries.image_ids[rows].astype(str),
        "label": labels.astype(str),
        "seed001_accuracy": accuracy,
        "own_rank": own_rank,
        "class_rank": class_rank,
        "cosine_drift": drift,
    })
    neighbour_table = pd.DataFrame({
        "image_id": np.repeat(per_image["image_id"].to_numpy(), neighbours.shape[1]),
        "rank": np.tile(np.arange(neighbours.shape[1]), len(rows)),
        "neighbour_id": gallery.image_ids[neighbours.reshape(-1)].astype(str),
        "similarity": similarity.reshape(-1),
    })
    return metrics, per_image, neighbour_table


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "", "model", "dataset", "manipulation").parse_args(argv)
    params = load_cell_params(args.params, model=args.model, dataset=args.dataset,
                              manipulation=args.manipulation)
    gallery = read_embeddings(paths.embeddings_path(args.model, args.dataset, paths.CLEAN))
    queries = (gallery if args.manipulation == paths.CLEAN
               else read_embeddings(paths.embeddings_path(args.model, args.dataset,
                                                          args.manipulation)))
    cell_key = f"{args.model}/{args.dataset}/{args.manipulation}"
    metrics, per_image, neighbour_table = score_cell(gallery, queries, params, cell_key)

    total = gallery.metadata["n_images"] + gallery.metadata["n_skipped"]
    meta = queries.metadata
    provenance = {key: meta.get(key) for key in ("model", "arch", "pretrained", "weights",
                                                  "random_weights", "precision", "quick_gelu",
                                                  "features", "seed")}
    report = {
        "cell": {"model": args.model, "dataset": args.dataset, "manipulation": args.manipulation,
                 "function": meta.get("function"), "params": meta.get("params")},
        "provenance": {**provenance, "versions": package_versions()},
        "n_images": len(per_image),
        "n_skipped": int(total - len(per_image)),
        "skipped": sorted({*(s["image_id"] for s in gallery.metadata["skipped"]),
                           *(s["image_id"] for s in meta.get("skipped", []))}),
        "retrieval": {"index": "clean gallery of the dataset (exact inner product)",
                      "gallery_size": len(gallery), **params.retrieval.model_dump()},
        "metrics": metrics,
        "per_class_seed001_accuracy": rm.class_means(
            per_image["seed001_accuracy"].to_numpy(), per_image["label"].to_numpy()
        ).to_dict(),
    }
    out = paths.cell_dir(args.model, args.dataset, args.manipulation)
    with atomic_path(out / "per_image.parquet") as tmp:
        per_image.to_parquet(tmp, index=False)
    with atomic_path(out / "neighbours.parquet") as tmp:
        neighbour_table.to_parquet(tmp, index=False)
    write_json(out / "metrics.json", report)
    shown = ", ".join(
        f"{name} {metrics[name]['value']:.4f} [{metrics[name]['ci_low']:.4f}, "
        f"{metrics[name]['ci_high']:.4f}]"
        for name in ("seed001_accuracy", f"recall_own_at_{params.retrieval.recall_k[0]}")
    )
    print(f"score {cell_key}: {shown}; {len(per_image)} images -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
