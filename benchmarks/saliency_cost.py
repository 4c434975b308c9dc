"""What the saliency stage adds per image, against embedding the same images.

    python benchmarks/saliency_cost.py --images 8 --arch ViT-B-32

On the same real JPEGs (../shared/data/imagenet_sample_1000), one model, one process:
  embed     decode + preprocess + batched ``encode_image`` (the embed stage's work per image);
  saliency  what the saliency stage does per image with the default settings: both views
            (clean + a post-it), two classes (object + word), Grad-CAM and occlusion sensitivity
            (window 0.25, stride 0.125 of the input side), box mask and model views;
            each method also timed alone.
Prints seconds per image of each side and their ratio, in interleaved rounds (embed before and
after each saliency run). Random weights: speed only.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

from _shared import parser, random_model, sample_manifest  # benchmarks/_shared.py
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.images import load_rgb
from cliprobe.manipulations import ImageContext, get
from cliprobe.manipulations.typographic import PostitParams
from cliprobe.models import load_model
from cliprobe.saliency.explain import Explainer, explain
from cliprobe.saliency.geometry import fill_value
from cliprobe.saliency.maps import zero_shot_head
from cliprobe.saliency.towers import gradcam_layer


def main() -> None:
    parse = parser(__doc__, images=8, arch="ViT-B-32")
    parse.add_argument("--classes", type=int, default=20, help="zero-shot classes")
    parse.add_argument("--repeats", type=int, default=2, help="interleaved rounds")
    args = parse.parse_args()
    manifest = sample_manifest(args.data, args.images)
    loaded = load_model(args.arch, random_model(args.arch), "cpu")
    encode = make_image_encoder(loaded.model, loaded.device, "fp32")
    weights = np.random.default_rng(0).standard_normal((loaded.embed_dim, args.classes))
    weights = (weights / np.linalg.norm(weights, axis=0)).astype(np.float32)
    paths = [args.data / p for p in manifest["path"]]
    print(f"{args.arch} random weights, {len(paths)} images, {args.classes} classes, torch "
          f"threads {torch.get_num_threads()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")

    side = int(loaded.preprocess(load_rgb(paths[0])).shape[-1])
    postit = get("postit")

    def explainer(methods: tuple[str, ...]) -> Explainer:
        return Explainer(
            head=zero_shot_head(loaded.model.visual, weights), preprocess=loaded.preprocess,
            input_side=side, methods=methods, gradcam_layer=gradcam_layer(loaded.model.visual,
                                                                          side),
            occlusion_window=round(0.25 * side), occlusion_stride=round(0.125 * side),
            occlusion_fill=fill_value(loaded.preprocess, "#808080"), batch_size=16,
            map_side=56)

    def saliency_seconds(methods: tuple[str, ...]) -> float:
        chosen = explainer(methods)
        started = time.perf_counter()
        for path in paths:
            image = load_rgb(path)
            attacked = postit(image, PostitParams(), np.random.default_rng(0),
                              ImageContext("x", "a", ()))
            explain(chosen, image, attacked.image, [0, 1], attacked.info["word_box"])
        return (time.perf_counter() - started) / len(paths)

    def embed_seconds() -> float:
        started = time.perf_counter()
        tensors = [loaded.preprocess(load_rgb(p)) for p in paths]
        for i in range(0, len(tensors), args.batch_size):
            encode(torch.stack(tensors[i:i + args.batch_size]))
        return (time.perf_counter() - started) / len(paths)

    encode(torch.stack([loaded.preprocess(load_rgb(paths[0]))]))  # warm-up
    explain(explainer(("gradcam",)), load_rgb(paths[0]), load_rgb(paths[0]), [0, 1], None)
    # interleaved rounds, so a change in the machine's load hits both sides alike
    for round_ in range(args.repeats):
        embed_before = embed_seconds()
        both = saliency_seconds(("gradcam", "occlusion"))
        embed_after = embed_seconds()
        embed = (embed_before + embed_after) / 2
        print(f"round {round_ + 1}: embed {embed_before:.3f} / {embed_after:.3f} s/image, "
              f"saliency (gradcam + occlusion) {both:.3f} s/image: ratio {both / embed:.1f}x "
              f"(load {os.getloadavg()[0]:.1f})")
    for method in ("gradcam", "occlusion"):
        embed_before = embed_seconds()
        alone = saliency_seconds((method,))
        embed = (embed_before + embed_seconds()) / 2
        print(f"{method} alone: {alone:.3f} s/image vs embed {embed:.3f}: ratio "
              f"{alone / embed:.1f}x (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
