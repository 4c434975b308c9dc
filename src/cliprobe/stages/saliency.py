"""Stage saliency@<model>-<dataset>-<cell>: where the model looks, for the cells that ask.

Only cells listed in ``saliency.cells`` get this stage (it costs far more than embedding: one
backward pass per map for Grad-CAM, one forward pass per window for occlusion). For a seeded
subset of ``saliency.max_images`` images it explains the zero-shot decision between the true
object and a second class (the written word, else the strongest competitor), on the reference
view (the clean image; the object's unlabelled photo for real typographic photos) and on the
subject (the manipulated image), with each method of ``saliency.methods``.

Writes into ``data/cells/<model>/<dataset>/_saliency/<cell>/``:

- ``maps.npz``: per method ``(N, 2 views, 2 classes, map_side, map_side)`` float16 (NaN where
  a view or class does not exist), the model views ``(N, 2, 112, 112, 3)`` uint8, the word's
  box coverage ``(N, map_side, map_side)``, image ids, class names and roles, and ``meta``
  (JSON: methods with their params, Grad-CAM layer, provenance);
- ``mass.parquet``: the share of each map inside the word's box, per image, view, method,
  class;
- ``saliency.json``: provenance, settings and the mass summary with bootstrap intervals.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import manipulation_params
from cliprobe.config.stage_params import load_stage_params
from cliprobe.datasets.manifest import class_vocabulary, read_manifest
from cliprobe.embedding.reader import image_contexts, manipulation_step
from cliprobe.errors import exit_on_user_error
from cliprobe.images import ImageSkipped, load_rgb
from cliprobe.io.atomic import atomic_path, write_json
from cliprobe.io.classifier import read_classifier
from cliprobe.io.embeddings import read_embeddings
from cliprobe.io.saliency import SaliencyMaps, write_maps
from cliprobe.manipulations import get as get_manipulation
from cliprobe.metrics import zeroshot as zs
from cliprobe.models import load_model
from cliprobe.provenance import package_versions
from cliprobe.saliency.explain import DISPLAY_SIDE, ROLES, VIEWS, Explainer, explain
from cliprobe.saliency.geometry import fill_value
from cliprobe.saliency.maps import zero_shot_head
from cliprobe.saliency.selection import choose_subjects
from cliprobe.saliency.summary import MASS_COLUMNS, mass_summary
from cliprobe.saliency.towers import gradcam_layer
from cliprobe.scores.estimates import Estimator
from cliprobe.stages._common import parser, setup_logging

log = logging.getLogger("cliprobe.saliency")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "", "model", "dataset", "manipulation").parse_args(argv)
    params = load_stage_params("saliency", args.params, model=args.model, dataset=args.dataset,
                               manipulation=args.manipulation)
    settings = params.saliency
    cell = args.manipulation
    cell_key = f"{args.model}/{args.dataset}/{cell}"
    is_original = cell == paths.CLEAN
    manifest, manifest_info = read_manifest(paths.manifest_path(args.dataset))
    classifier = read_classifier(paths.classifier_path(args.model, args.dataset))
    queries = read_embeddings(paths.embeddings_path(args.model, args.dataset, cell))
    out = paths.saliency_dir(args.model, args.dataset, cell)
    features = queries.metadata.get("features", "global")
    if features != "global":  # the grid crosses every model: record the skip, do not fail
        reason = f"features '{features}' are not CLIP's joint embedding: no zero-shot decision"
        _write_empty(out, settings.map_side, {"cell": cell_key, "skipped_reason": reason})
        print(f"saliency {cell_key}: skipped ({reason})", file=sys.stderr)
        return
    subjects = choose_subjects(
        [str(i) for i in queries.image_ids], [str(x) for x in queries.labels],
        [queries.info(r) for r in range(len(queries))],
        zs.logits(queries.vectors, classifier.weights), classifier.class_names, manifest,
        is_original, settings.max_images, params.seed, cell_key)

    loaded = load_model(args.model, params.model[args.model], params.embed.device)
    probe = loaded.preprocess(_blank())
    side = int(probe.shape[-1])
    methods = tuple(settings.methods)
    layer = gradcam_layer(loaded.model.visual, side) if "gradcam" in methods else None
    window = max(1, round(settings.occlusion.window * side))
    stride = max(1, round(settings.occlusion.stride * side))
    explainer = Explainer(
        head=zero_shot_head(loaded.model.visual, classifier.weights), preprocess=loaded.preprocess,
        input_side=side, methods=methods, gradcam_layer=layer, occlusion_window=window,
        occlusion_stride=stride, occlusion_fill=fill_value(loaded.preprocess,
                                                           settings.occlusion.fill),
        batch_size=settings.batch_size, map_side=settings.map_side)
    step = None
    if not is_original:
        entry = params.manipulation[cell]
        step = manipulation_step(get_manipulation(entry.function),
                                 manipulation_params(cell, entry.function, entry.params),
                                 cell, params.seed)
    path_of = dict(zip(manifest["image_id"].astype(str), manifest["path"], strict=True))
    # the contexts the embed stage used, so the re-created images are the embedded ones
    context_of = {c.image_id: c for c in image_contexts(
        manifest, class_vocabulary(manifest, manifest_info))}
    index = {name: i for i, name in enumerate(classifier.class_names)}

    kept, skipped, mass_rows = [], [], []
    maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    views, boxes = [], []
    started = time.perf_counter()
    for subject in subjects:
        try:
            image = load_rgb(paths.raw_dir(args.dataset) / path_of[subject.image_id])
            reference = None
            if subject.reference_id is not None:
                reference = (image if not is_original else
                             load_rgb(paths.raw_dir(args.dataset) / path_of[subject.reference_id]))
        except ImageSkipped as error:
            skipped.append({"image_id": subject.image_id, "reason": error.reason})
            continue
        shown = image
        if step is not None:
            shown = step(image, context_of[subject.image_id]).image
        classes = [index[subject.label]]
        if subject.second_class is not None:
            classes.append(index[subject.second_class])
        result = explain(explainer, reference, shown, classes, subject.word_box)
        kept.append(subject)
        for method in methods:
            maps[method].append(result.maps[method])
        views.append(result.views)
        boxes.append(result.box.astype(np.float16))
        for row in result.mass:
            name = classifier.class_names[row.pop("class_index")]
            mass_rows.append({"image_id": subject.image_id, "class_name": name,
                              "second_role": subject.second_role, **row})
    seconds = time.perf_counter() - started

    meta = {
        **loaded.provenance, "dataset": args.dataset, "cell": cell, "seed": params.seed,
        "input_side": side, "views": list(VIEWS), "roles": list(ROLES),
        "methods": {
            **({"gradcam": {"library": "pytorch-grad-cam GradCAM", "layer": layer.name,
                            "target": "class logit (100 x cosine)",
                            "postprocessing": "ReLU, min-max to [0, 1] per map, bilinear "
                                              "resize to the input side"}}
               if layer is not None else {}),
            **({"occlusion": {"window_px": window, "stride_px": stride,
                              "fill": settings.occlusion.fill,
                              "value": "mean drop of the class's softmax probability over the "
                                       "windows covering a pixel"}}
               if "occlusion" in methods else {}),
        },
        "map_side": settings.map_side, "max_images": settings.max_images,
        "versions": package_versions(),
    }
    n = len(kept)
    side_out = settings.map_side
    write_maps(out / "maps.npz", SaliencyMaps(
        image_ids=[s.image_id for s in kept],
        reference_ids=[s.reference_id or "" for s in kept],
        classes=np.array([[s.label, s.second_class or ""] for s in kept], dtype=str),
        second_roles=[s.second_role for s in kept],
        views=(np.stack(views) if views
               else np.zeros((0, 2, DISPLAY_SIDE, DISPLAY_SIDE, 3), np.uint8)),
        box=np.stack(boxes) if boxes else np.zeros((0, side_out, side_out), np.float16),
        maps={m: (np.stack(maps[m]) if maps[m]
                  else np.zeros((0, 2, 2, side_out, side_out), np.float16)) for m in methods},
        meta=meta))
    mass = pd.DataFrame(mass_rows, columns=MASS_COLUMNS)
    with atomic_path(out / "mass.parquet") as tmp:
        mass.to_parquet(tmp, index=False)
    estimate = Estimator(params.seed, f"{cell_key}/saliency", params.stats.bootstrap_resamples,
                         params.stats.confidence)
    write_json(out / "saliency.json", {
        "cell": {"model": args.model, "dataset": args.dataset, "manipulation": cell},
        "provenance": meta, "n_images": n, "n_skipped": len(skipped), "skipped": skipped,
        "with_word_box": int(sum(s.word_box is not None for s in kept)),
        "mass_in_word_box": mass_summary(mass, estimate),
    })
    per_image = seconds / n if n else float("nan")
    print(f"saliency {cell_key} ({loaded.weights}): {n} images, {len(skipped)} skipped, "
          f"{seconds:.1f} s ({per_image:.2f} s/image; {', '.join(methods)}) -> {out}",
          file=sys.stderr)


def _write_empty(out: Path, map_side: int, meta: dict) -> None:
    """The outputs of a cell with nothing to explain (so DVC and the readers find them)."""
    write_maps(out / "maps.npz", SaliencyMaps.empty(map_side, DISPLAY_SIDE, meta))
    with atomic_path(out / "mass.parquet") as tmp:
        pd.DataFrame(columns=MASS_COLUMNS).to_parquet(tmp, index=False)
    write_json(out / "saliency.json", {"provenance": meta, "n_images": 0,
                                       "mass_in_word_box": {}})


def _blank():  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.new("RGB", (32, 32))


if __name__ == "__main__":
    main()
