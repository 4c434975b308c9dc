"""Embed-stage throughput against the model's own speed and against seed 001's loop.

    python benchmarks/embed_throughput.py --images 200 --arch ViT-B-32

Three measurements over the same real JPEGs (../shared/data/imagenet_sample_1000):
  limit    bare ``model.encode_image`` over tensors already decoded and preprocessed, batched;
  runner   cliprobe's embed runner end to end (decode, manipulation, preprocess, encode,
           chunked Parquet write), DataLoader workers as the stage uses them;
  seed     seed 001's loop: open, preprocess and encode one image per forward pass.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from _shared import parser, random_model, sample_manifest  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import default_workers, embed_manifest
from cliprobe.images import load_rgb
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams
from cliprobe.models import load_model


def main() -> None:
    parse = parser(__doc__, images=200, arch="ViT-B-32")
    parse.add_argument("--workers", default="auto")
    parse.add_argument("--seed-images", type=int, default=64,
                       help="images for the (slow) seed loop; its rate is per image")
    args = parse.parse_args()

    manifest = sample_manifest(args.data, args.images)
    loaded = load_model(args.arch, random_model(args.arch), "cpu")
    encode = make_image_encoder(loaded.model, loaded.device, "fp32")
    workers = default_workers("cpu") if args.workers == "auto" else int(args.workers)
    print(f"{args.arch} random weights, {len(manifest)} images from {args.data.name}, "
          f"batch {args.batch_size}, {workers} workers, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} cores")

    tensors = [loaded.preprocess(load_rgb(args.data / p)) for p in manifest["path"]]
    encode(torch.stack(tensors[: args.batch_size]))  # warm-up
    started = time.perf_counter()
    for i in range(0, len(tensors), args.batch_size):
        encode(torch.stack(tensors[i : i + args.batch_size]))
    limit = len(tensors) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        transform = manipulation_transform(get("identity"), NoParams(), "original", 0)
        report = embed_manifest(
            manifest, args.data, transform, loaded.preprocess, encode, loaded.embed_dim,
            Path(tmp) / "out.parquet", Path(tmp) / "partial", {"benchmark": True},
            batch_size=args.batch_size, num_workers=workers, chunk_size=512,
        )
    runner = report.images_per_second

    started = time.perf_counter()
    with torch.inference_mode():
        for path in manifest["path"].head(args.seed_images):
            image = loaded.preprocess(load_rgb(args.data / path)).unsqueeze(0)
            features = loaded.model.encode_image(image)
            features /= features.norm(dim=-1, keepdim=True)
            features.cpu().numpy()
    seed = min(args.seed_images, len(manifest)) / (time.perf_counter() - started)

    print(f"limit  (bare encode_image, pre-decoded): {limit:8.1f} img/s")
    print(f"runner (embed stage end to end):         {runner:8.1f} img/s  "
          f"ratio to limit {runner / limit:.3f} (target >= 0.85)")
    print(f"seed   (seed 001, one image per forward): {seed:7.1f} img/s  "
          f"runner / seed {runner / seed:.2f}x (target >= 4)")


if __name__ == "__main__":
    main()
