"""Feature variants x index backends on grey queries: recall, own-image mAP, query time.

    python benchmarks/retrieval_variants.py --images 300 --arch cliprobe-smoke
    python benchmarks/retrieval_variants.py --images 300 --arch ViT-B-32

The first ``--images`` photos of ../shared/data/imagenet_sample_1000 (one per class) are the
gallery (clean) and, after seed 001's grey manipulation (``convert("L").convert("RGB")``), the
queries. For each feature variant (global, mac, rmac, multipatch) and index (exact, faiss_flat,
faiss_ivf, faiss_hnsw) it prints:

  R@1, R@10   fraction of grey queries whose own clean image is in the top 1 / 10
  mAP         own-image mAP: mean of 1 / rank of the own clean image (the only relevant item:
              the sample has one image per class, so same-class mAP is undefined); computed
              from the top 100, so a query whose image ranks beyond 100 (or is not returned
              by an approximate index) counts 0
  build ms    index construction (IVF includes its k-means)
  query ms    search time per query (k = 100, all queries in one call)
  ANN R@10    10-recall@10 of the index against exact search

plus two post-processing rows per variant: exact search after PCA (fitted on the gallery) and
the k-means coarse-retrieval baseline. Random weights: no number here is a finding about CLIP.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from cliprobe.config.schema import ModelConfig
from cliprobe.metrics.ranking import own_image_average_precision
from cliprobe.metrics.retrieval import own_image_rank, recall_at_k
from cliprobe.models import load_model
from cliprobe.models.features import (
    FEATURE_VARIANTS,
    feature_map,
    global_features,
    mac_pool,
    multipatch_features,
    rmac_pool,
)
from cliprobe.retrieval.indexes import approximate_recall, build_index
from cliprobe.retrieval.postprocess import PCAProjector, cluster_retrieval, fit_kmeans

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_sample_1000"
K = 100


def _normalise(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).numpy().astype(np.float32)


def extract(model, batches: list[torch.Tensor]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every variant's features of all batches, and the seconds each variant took per image."""
    out: dict[str, list[np.ndarray]] = {variant: [] for variant in FEATURE_VARIANTS}
    seconds = dict.fromkeys(FEATURE_VARIANTS, 0.0)
    for batch in batches:
        start = time.perf_counter()
        out["global"].append(global_features(batch, model))
        seconds["global"] += time.perf_counter() - start
        start = time.perf_counter()
        fmap = feature_map(batch, model)  # shared by mac and rmac
        shared = time.perf_counter() - start
        start = time.perf_counter()
        out["mac"].append(_normalise(mac_pool(fmap)))
        seconds["mac"] += shared + time.perf_counter() - start
        start = time.perf_counter()
        out["rmac"].append(_normalise(rmac_pool(fmap, 3)))
        seconds["rmac"] += shared + time.perf_counter() - start
        start = time.perf_counter()
        out["multipatch"].append(multipatch_features(batch, model))
        seconds["multipatch"] += time.perf_counter() - start
    n = sum(len(b) for b in batches)
    return ({v: np.concatenate(parts) for v, parts in out.items()},
            {v: s / n for v, s in seconds.items()})


def score(indices: np.ndarray, own: np.ndarray) -> dict[str, float]:
    """R@1, R@10 and own-image mAP of rankings ``(Q, K)``."""
    rank = own_image_rank(indices, own)
    return {"R@1": recall_at_k(rank, 1).mean(), "R@10": recall_at_k(rank, 10).mean(),
            "mAP": own_image_average_precision(indices, own).mean()}


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--images", type=int, default=300)
    parse.add_argument("--arch", default="cliprobe-smoke")
    parse.add_argument("--batch-size", type=int, default=32)
    parse.add_argument("--data", type=Path, default=SHARED)
    parse.add_argument("--pca", type=int, default=100, help="PCA components of the PCA row")
    parse.add_argument("--kmeans", type=int, default=16, help="K of the k-means baseline row")
    args = parse.parse_args()

    labels = pd.read_csv(args.data / "labels.csv").head(args.images)
    loaded = load_model(args.arch, ModelConfig(arch=args.arch, pretrained=None,
                                               random_init_seed=0), "cpu")
    clean, grey = [], []
    for name in labels["path"]:
        with Image.open(args.data / name) as image:
            rgb = image.convert("RGB")
        clean.append(loaded.preprocess(rgb))
        grey.append(loaded.preprocess(rgb.convert("L").convert("RGB")))

    def batches(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.stack(tensors[i : i + args.batch_size])
                for i in range(0, len(tensors), args.batch_size)]

    gallery_feats, seconds = extract(loaded.model, batches(clean))
    query_feats, _ = extract(loaded.model, batches(grey))
    own = np.arange(len(labels))
    n = len(own)
    index_params = {
        "exact": {},
        "faiss_flat": {},
        "faiss_ivf": {"nlist": 16, "nprobe": 2, "seed": 0},
        "faiss_hnsw": {"M": 16, "efConstruction": 40, "efSearch": 16},
    }
    print(f"{args.arch} RANDOM WEIGHTS (not a finding), {n} images of {args.data.name}: clean "
          f"gallery, grey queries; torch threads {torch.get_num_threads()}")
    print("faiss_ivf nlist=16 nprobe=2; faiss_hnsw M=16 efConstruction=40 efSearch=16 "
          f"(FAISS searches with ef = max(efSearch, k) = {K}); searches return the top {K}")
    rows = []
    for variant in FEATURE_VARIANTS:
        gallery, queries = gallery_feats[variant], query_feats[variant]
        exact_idx = None
        for kind, params in index_params.items():
            start = time.perf_counter()
            index = build_index(kind, gallery, **params)
            build = time.perf_counter() - start
            index.search(queries[:8], K)  # warm-up
            start = time.perf_counter()
            idx, _ = index.search(queries, K)
            query = time.perf_counter() - start
            if kind == "exact":
                exact_idx = idx
            rows.append({"variant": variant, "dim": gallery.shape[1], "index": kind,
                         **score(idx, own), "build ms": 1e3 * build, "query ms": 1e3 * query / n,
                         "ANN R@10": approximate_recall(idx, exact_idx, 10),
                         "embed ms/img": 1e3 * seconds[variant]})
        projector = PCAProjector(args.pca).fit(gallery)
        start = time.perf_counter()
        idx, _ = build_index("exact", projector.transform(gallery)).search(
            projector.transform(queries), K)
        query = time.perf_counter() - start
        rows.append({"variant": variant, "dim": projector.n_components,
                     "index": f"exact+pca{projector.n_components}", **score(idx, own),
                     "build ms": float("nan"), "query ms": 1e3 * query / n,
                     "ANN R@10": approximate_recall(idx, exact_idx, 10),
                     "embed ms/img": 1e3 * seconds[variant]})
        start = time.perf_counter()
        kmeans = fit_kmeans(gallery, args.kmeans, seed=0, n_init=4)
        build = time.perf_counter() - start
        start = time.perf_counter()
        idx, _ = cluster_retrieval(queries, gallery, kmeans, K)
        query = time.perf_counter() - start
        rows.append({"variant": variant, "dim": gallery.shape[1],
                     "index": f"kmeans{kmeans.k}-coarse", **score(idx, own),
                     "build ms": 1e3 * build, "query ms": 1e3 * query / n,
                     "ANN R@10": approximate_recall(idx, exact_idx, 10),
                     "embed ms/img": 1e3 * seconds[variant]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
