"""Embedding throughput of the ``ray`` backend against ``local`` on this machine, and the
per-image costs a cluster-size estimate needs.

    python benchmarks/ray_vs_local.py --images 200 --arch ViT-B-32

Over the same real JPEGs (../shared/data/imagenet_sample_1000, random weights):
  costs  seconds per image, measured in this process: decode + preprocess on one thread, and
         ``encode_image`` in batches on one thread and on all threads;
  local  ``embed_manifest`` end to end (DataLoader workers as the stage uses them);
  ray    ``embed_manifest_ray`` end to end on a local Ray instance with this machine's CPUs
         (load tasks + an actor pool; each actor builds the model itself). Its time includes
         starting the actors and building the model in them, not ``ray.init`` (printed apart).

Ray is not expected to win on a single small machine: the point is its overhead ratio here and
the per-image costs, from which the time on N workers follows.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _shared import parser, random_model, sample_manifest  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import default_workers, embed_manifest
from cliprobe.images import load_rgb
from cliprobe.io.embeddings import read_embeddings
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams
from cliprobe.models import load_model
from cliprobe.models.loader import LoadedModel


def per_image_costs(manifest: pd.DataFrame, root: Path, loaded: LoadedModel, batch_size: int,
                    encode_images: int) -> dict[str, float]:
    """Seconds per image: decode + preprocess (1 thread), encode (1 thread and all threads)."""
    threads = torch.get_num_threads()
    started = time.perf_counter()
    tensors = [loaded.preprocess(load_rgb(root / p)) for p in manifest["path"]]
    decode = (time.perf_counter() - started) / len(tensors)
    encode = make_image_encoder(loaded.model, "cpu", "fp32")
    batches = [torch.stack(tensors[i : i + batch_size])
               for i in range(0, min(encode_images, len(tensors)), batch_size)]
    n = sum(len(b) for b in batches)
    costs = {"decode_preprocess_1_thread": decode}
    for label, count in (("encode_1_thread", 1), (f"encode_{threads}_threads", threads)):
        torch.set_num_threads(count)
        encode(batches[0][:2])  # warm-up
        started = time.perf_counter()
        for batch in batches:
            encode(batch)
        costs[label] = (time.perf_counter() - started) / n
    torch.set_num_threads(threads)
    return costs


def main() -> None:
    parse = parser(__doc__, images=200, arch="ViT-B-32")
    parse.add_argument("--chunk-size", type=int, default=512)
    parse.add_argument("--encode-images", type=int, default=64,
                       help="images for the per-image encode cost (per thread setting)")
    args = parse.parse_args()

    import ray

    from cliprobe.embedding.ray_backend import embed_manifest_ray, encoder_from_model

    manifest = sample_manifest(args.data, args.images)
    config = random_model(args.arch)
    build = functools.partial(load_model, args.arch, config, "cpu")
    loaded = build()
    workers = default_workers("cpu")
    cores = os.cpu_count() or 1
    print(f"{args.arch} random weights, {len(manifest)} images from {args.data.name}, batch "
          f"{args.batch_size}, {cores} cores; local: {workers} DataLoader workers + "
          f"{torch.get_num_threads()} torch threads")

    costs = per_image_costs(manifest, args.data, loaded, args.batch_size, args.encode_images)
    transform = manipulation_transform(get("identity"), NoParams(), "original", 0)
    common = {"manifest": manifest, "image_root": args.data, "transform": transform,
              "preprocess": loaded.preprocess, "embed_dim": loaded.embed_dim,
              "metadata": {"benchmark": True}, "batch_size": args.batch_size,
              "num_workers": workers, "chunk_size": args.chunk_size}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        local = embed_manifest(**common, encode=make_image_encoder(loaded.model, "cpu", "fp32"),
                               output=out / "local.parquet", partial_root=out / "p-local")
        started = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        init_seconds = time.perf_counter() - started
        try:
            remote = embed_manifest_ray(**common, encode=encoder_from_model(build),
                                        output=out / "ray.parquet", partial_root=out / "p-ray")
        finally:
            ray.shutdown()
        a, b = read_embeddings(local.output), read_embeddings(remote.output)
        assert list(a.image_ids) == list(b.image_ids)
        difference = float(np.abs(a.vectors - b.vectors).max())

    ratio = local.images_per_second / remote.images_per_second
    decode = costs["decode_preprocess_1_thread"]
    print(f"per image, decode + preprocess (1 thread): {decode:.4f} s")
    for key, value in costs.items():
        if key.startswith("encode"):
            threads = key.removeprefix("encode_").replace("_", " ")
            print(f"per image, encode_image (batch {args.batch_size}, {threads}): {value:.4f} s")
    print(f"local: {local.images_per_second:7.2f} img/s  ({local.seconds:.1f} s)")
    print(f"ray:   {remote.images_per_second:7.2f} img/s  ({remote.seconds:.1f} s, "
          f"{max(1, cores // 2)} actor(s) x 1 CPU + load tasks; ray.init {init_seconds:.1f} s "
          "not included)")
    print(f"overhead ratio local/ray: {ratio:.2f}x   max |ray - local| = {difference:.2e}")


if __name__ == "__main__":
    main()
