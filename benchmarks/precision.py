"""The embed stage at bf16 against fp32 on the same images, and what bf16 changes (target 1).

    python benchmarks/precision.py                 # 1,000 images, ViT-B-32 (random weights)
    python benchmarks/precision.py --images 200    # quicker

Both sides run cliprobe's embed runner end to end (decode, preprocess, encode, chunked Parquet)
with the stage's decode-worker count, on the same photos of ../shared/data/imagenet_sample_1000,
with the same weights: ``precision: fp32`` and ``precision: bf16`` (weights held in bf16, as
open_clip's bf16; not autocast). Also printed: the bare encoder at each precision (the limit),
the decode + preprocess rate of one core, and the drift of bf16 from fp32: min / mean cosine of
each image's two embeddings (target min >= 0.999) and the mean overlap of the top-10 retrieval
lists (each image as a query against the other images, at each precision).

Target: bf16 / fp32 >= 3 on a CPU with AMX or AVX512-BF16.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _shared import machine, parser, random_model, sample_manifest  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import default_workers, embed_manifest
from cliprobe.images import load_rgb
from cliprobe.io.embeddings import read_embeddings
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams
from cliprobe.models import load_model
from cliprobe.models.hardware import cpu_bf16


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean |top-k(a) ∩ top-k(b)| / k, each row a query against the other rows."""
    def neighbours(vectors: np.ndarray) -> np.ndarray:
        scores = vectors @ vectors.T
        np.fill_diagonal(scores, -np.inf)
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    left, right = neighbours(a), neighbours(b)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(left, right, strict=True)]))


def main() -> None:
    parse = parser(__doc__, images=1000, arch="ViT-B-32")
    parse.add_argument("--workers", default="auto")
    args = parse.parse_args()
    print(machine())
    print(f"bf16 hardware: {cpu_bf16() or 'none found'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    manifest = sample_manifest(args.data, args.images)
    workers = default_workers("cpu") if args.workers == "auto" else int(args.workers)
    print(f"{args.arch} random weights, {len(manifest)} images, batch {args.batch_size}, "
          f"{workers} decode workers")

    sample = manifest["path"].head(min(200, len(manifest)))
    loaded = {p: load_model(args.arch, random_model(args.arch).model_copy(
        update={"precision": p}), "cpu") for p in ("fp32", "bf16")}
    tensors = [loaded["fp32"].preprocess(load_rgb(args.data / p)) for p in sample]
    started = time.perf_counter()  # decode + preprocess again, files now in the page cache
    for path in sample:
        loaded["fp32"].preprocess(load_rgb(args.data / path))
    decode_rate = len(sample) / (time.perf_counter() - started)

    bare, runner, vectors = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision, model in loaded.items():
            encode = make_image_encoder(model.model, "cpu", precision)
            encode(torch.stack(tensors[: args.batch_size]))  # warm-up
            started = time.perf_counter()
            for i in range(0, len(tensors), args.batch_size):
                encode(torch.stack(tensors[i : i + args.batch_size]))
            bare[precision] = len(tensors) / (time.perf_counter() - started)
            output = Path(tmp) / f"{precision}.parquet"
            report = embed_manifest(
                manifest, args.data,
                manipulation_transform(get("identity"), NoParams(), "original", 0),
                model.preprocess, encode, model.embed_dim, output, Path(tmp) / "partial",
                {"precision": precision}, batch_size=args.batch_size, num_workers=workers,
                chunk_size=512)
            runner[precision] = report.images_per_second
            vectors[precision] = read_embeddings(output).vectors
            print(f"{precision}: embed stage {runner[precision]:6.1f} img/s, bare encode "
                  f"{bare[precision]:6.1f} img/s", flush=True)

    cosine = np.sum(vectors["fp32"] * vectors["bf16"], axis=1)
    overlap = top_k_overlap(vectors["fp32"], vectors["bf16"])
    print()
    print(f"decode + preprocess, one core:       {decode_rate:7.1f} img/s")
    print(f"bare encode     bf16 / fp32: {bare['bf16']:7.1f} / {bare['fp32']:.1f} img/s = "
          f"{bare['bf16'] / bare['fp32']:.2f}x")
    print(f"embed stage     bf16 / fp32: {runner['bf16']:7.1f} / {runner['fp32']:.1f} img/s = "
          f"{runner['bf16'] / runner['fp32']:.2f}x (target >= 3)")
    print(f"drift bf16 vs fp32: cosine min {cosine.min():.6f} (target >= 0.999), mean "
          f"{cosine.mean():.6f}; top-10 overlap {overlap:.3f}")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
