"""What a GPU machine needs to know before a big sweep, in one command (target 5).

    python benchmarks/gpu_readiness.py                   # ViT-B-32, 200 images
    python benchmarks/gpu_readiness.py --arch ViT-L-14 --images 500

Prints, on this machine:
  1. the encode rate of the model on the GPU (CUDA) at fp32, fp16 and bf16 (weights held in the
     low precision, as ``precision: fp16|bf16``) and under autocast (``amp``, ``amp_bf16``);
     without a CUDA GPU, the same rows measured on the CPU, and it says so;
  2. the CPU-side cost per image, one core: decode (load_rgb), ImageNet-C's construction
     (Resize 256 + CenterCrop 224), each of the 19 corruptions (severity 3, on the constructed
     image), and CLIP preprocessing (of the full photo, and of a 224x224 image);
  3. how many CPU cores each GPU needs to be kept busy: (CPU ms per image) x (GPU images per
     second) / 1000, for a clean embedding and for an average sweep cell (construction decoded
     once per dataset, so a cell costs its corruption + preprocessing).
Random weights (speed does not depend on them); real photos from ../shared/data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from _shared import machine, parser, random_model, sample_manifest  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.images import load_rgb
from cliprobe.manipulations.corruptions import (
    ALL_CORRUPTIONS,
    CorruptionParams,
    corrupt_constructed,
    imagenet_c_construction,
)
from cliprobe.models import load_model

PRECISIONS = ("fp32", "fp16", "bf16", "amp", "amp_bf16")


def per_item_ms(function: Callable[[Any], Any], items: list[Any]) -> float:
    """Mean milliseconds of ``function`` over ``items`` (one warm-up call first)."""
    function(items[0])
    started = time.perf_counter()
    for item in items:
        function(item)
    return 1000 * (time.perf_counter() - started) / len(items)


def encode_rates(arch: str, device: str, images: list[torch.Tensor], batch: int,
                 repeats: int) -> dict[str, float]:
    """Images per second of the bare encoder at each precision the device supports."""
    rates = {}
    for precision in PRECISIONS:
        if device == "cpu" and precision in {"fp16", "amp", "amp_bf16"}:
            continue  # fp16 matrix kernels are slow on CPU; autocast is not used on CPU
        try:
            loaded = load_model(arch, random_model(arch).model_copy(
                update={"precision": precision}), device)
        except Exception as error:  # e.g. bf16 on an old GPU
            print(f"  {precision}: unavailable ({type(error).__name__}: {error})")
            continue
        encode = make_image_encoder(loaded.model, loaded.device, precision)
        stacked = torch.stack(images[:batch])
        encode(stacked)  # warm-up (kernel selection, cuDNN autotune)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            encode(stacked)  # returns numpy: synchronises with the GPU
        rates[precision] = repeats * len(stacked) / (time.perf_counter() - started)
        print(f"  {precision:9s} {rates[precision]:9.1f} img/s", flush=True)
        del loaded, encode
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rates


def main() -> None:
    parse = parser(__doc__, images=200, arch="ViT-B-32")
    parse.add_argument("--repeats", type=int, default=5, help="timed batches per precision")
    args = parse.parse_args()
    print(machine())
    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    if gpu:
        print(f"GPU: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)")
    else:
        print("NO CUDA GPU HERE: the encode rates below are this CPU's (torch "
              f"{torch.get_num_threads()} threads), not a GPU's; run this on the GPU machine")

    manifest = sample_manifest(args.data, args.images)
    files = [args.data / p for p in manifest["path"]]
    preprocess = load_model(args.arch, random_model(args.arch), "cpu").preprocess
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU costs per core
    photos = [load_rgb(f) for f in files]
    constructed = [imagenet_c_construction(p) for p in photos]
    costs = {
        "decode (load_rgb)": per_item_ms(load_rgb, files),
        "ImageNet-C construction": per_item_ms(imagenet_c_construction, photos),
        "preprocess, full photo": per_item_ms(preprocess, photos),
        "preprocess, 224x224": per_item_ms(preprocess, constructed),
    }
    few = constructed[: max(8, min(32, len(constructed)))]
    corruption_ms = {}
    for name in ALL_CORRUPTIONS:
        params = CorruptionParams(severity=3)

        def apply(image: Image.Image, name: str = name, params: Any = params) -> Any:
            np.random.seed(0)
            return corrupt_constructed(image, name, params)

        corruption_ms[name] = per_item_ms(apply, few)
    torch.set_num_threads(threads)

    print(f"\n1. encode rate, {args.arch}, batch {args.batch_size}, on {device}:")
    tensors = [preprocess(p) for p in photos[: args.batch_size]]
    while len(tensors) < args.batch_size:
        tensors += tensors[: args.batch_size - len(tensors)]
    rates = encode_rates(args.arch, device, tensors, args.batch_size, args.repeats)

    print("\n2. CPU cost per image, one core (ms):")
    for name, ms in costs.items():
        print(f"  {name:28s} {ms:7.2f}")
    for name, ms in sorted(corruption_ms.items(), key=lambda item: -item[1]):
        print(f"  corruption {name:17s} {ms:7.2f}")
    mean_corruption = float(np.mean(list(corruption_ms.values())))
    clean = costs["decode (load_rgb)"] + costs["preprocess, full photo"]
    cell = mean_corruption + costs["preprocess, 224x224"]
    naive = (costs["decode (load_rgb)"] + costs["ImageNet-C construction"] + cell)
    print(f"  mean of the 19 corruptions     {mean_corruption:7.2f}")
    print(f"  a clean embedding              {clean:7.2f}  (decode + preprocess)")
    print(f"  a sweep cell, decoded once     {cell:7.2f}  (corruption + preprocess)")
    print(f"  a sweep cell, decoding again   {naive:7.2f}")

    where = "GPU" if gpu else "CPU (no GPU here)"
    print(f"\n3. CPU cores per {where} to keep it busy = CPU ms per image x img/s / 1000:")
    for precision, rate in rates.items():
        print(f"  {precision:9s} at {rate:8.1f} img/s: clean {clean * rate / 1000:6.1f} cores, "
              f"sweep cell {cell * rate / 1000:6.1f} cores "
              f"(decoding per cell: {naive * rate / 1000:.1f})")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
