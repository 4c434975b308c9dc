"""Reduced-scale JPEG decoding (``model.<name>.jpeg_draft``, opt-in) against exact decoding.

    python benchmarks/jpeg_draft.py                       # the 1,000 ImageNet sample photos
    python benchmarks/jpeg_draft.py --data ../shared/data/sample_photos

Per image, one core: decode + CLIP preprocessing with exact decoding and with Pillow's draft
(JPEGs decoded at 1/2, 1/4 or 1/8 scale when both sides stay >= 256 px), the share of images
the draft changes, how much it changes the model's input, and the drift of a random-weight
ViT-B-32's embeddings (min / mean cosine; random weights: only an indication).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _shared import IMAGENET_SAMPLE, machine, random_model  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.images import load_rgb
from cliprobe.manipulations.corruptions import RESIZE_SHORT_SIDE
from cliprobe.models import load_model


def files_of(data: Path, images: int) -> list[Path]:
    """The first ``images`` image files listed in ``data``/labels.csv."""
    return [data / p for p in pd.read_csv(data / "labels.csv")["path"].head(images)]


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--data", type=Path, default=IMAGENET_SAMPLE)
    parse.add_argument("--images", type=int, default=1000)
    parse.add_argument("--arch", default="ViT-B-32")
    args = parse.parse_args()
    print(machine())
    files = files_of(args.data, args.images)
    loaded = load_model(args.arch, random_model(args.arch), "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    timings, inputs = {}, {}
    for name, draft in (("exact", None), ("draft", RESIZE_SHORT_SIDE)):
        loaded.preprocess(load_rgb(files[0], draft))  # warm-up
        started = time.perf_counter()
        inputs[name] = [loaded.preprocess(load_rgb(f, draft)) for f in files]
        timings[name] = 1000 * (time.perf_counter() - started) / len(files)
    torch.set_num_threads(threads)
    changed = [i for i, (a, b) in enumerate(zip(inputs["exact"], inputs["draft"], strict=True))
               if not torch.equal(a, b)]
    encode = make_image_encoder(loaded.model, "cpu", "fp32")
    vectors = {name: np.concatenate([encode(torch.stack(ts[i : i + 32]))
                                     for i in range(0, len(ts), 32)])
               for name, ts in inputs.items()}
    cosine = np.sum(vectors["exact"] * vectors["draft"], axis=1)
    difference = [float((inputs["exact"][i] - inputs["draft"][i]).abs().mean())
                  for i in changed]
    print(f"{len(files)} images of {args.data.name}; draft never below {RESIZE_SHORT_SIDE} px")
    print(f"decode + preprocess, exact: {timings['exact']:7.2f} ms/image")
    print(f"decode + preprocess, draft: {timings['draft']:7.2f} ms/image  "
          f"speed-up {timings['exact'] / timings['draft']:.2f}x")
    print(f"images the draft changes: {len(changed)} of {len(files)}"
          + (f"; their model input differs by {np.mean(difference):.4f} on average "
             f"(normalised units)" if changed else ""))
    print(f"embedding drift ({args.arch}, RANDOM WEIGHTS): cosine min {cosine.min():.6f}, "
          f"mean {cosine.mean():.6f}")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
