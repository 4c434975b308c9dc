"""Maps of one subject: both views (reference, subject) x both classes (object, second).

Pure over the model pieces it is handed (head, Grad-CAM layer, preprocess); no file I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from cliprobe.saliency.geometry import box_mask, model_view
from cliprobe.saliency.maps import downsample, gradcam_maps, occlusion_maps
from cliprobe.saliency.mass import mass_inside
from cliprobe.saliency.towers import GradcamLayer

#: Views of a subject, in the order of the arrays' second axis.
VIEWS = ("reference", "subject")
#: Classes of a subject, in the order of the arrays' third axis.
ROLES = ("object", "second")
#: Side of the stored model views (what the gallery shows), in pixels.
DISPLAY_SIDE = 112


@dataclass(frozen=True)
class Explainer:
    """The model pieces every map needs, bound once per cell."""

    head: Any
    preprocess: Callable[[Image.Image], Any]
    input_side: int
    methods: tuple[str, ...]
    gradcam_layer: GradcamLayer | None
    occlusion_window: int
    occlusion_stride: int
    occlusion_fill: Any
    batch_size: int
    map_side: int


@dataclass
class Explained:
    """One subject's outputs: stored maps, display views, box mask and mass shares."""

    maps: dict[str, np.ndarray]        # method -> (2 views, 2 roles, map_side, map_side), NaN = n/a
    views: np.ndarray                  # (2, DISPLAY_SIDE, DISPLAY_SIDE, 3) uint8, zeros = n/a
    box: np.ndarray                    # (map_side, map_side) float32 box coverage, zeros = none
    mass: list[dict[str, Any]] = field(default_factory=list)


def explain(explainer: Explainer, reference: Image.Image | None, subject: Image.Image,
            classes: list[int], box: tuple[float, float, float, float] | None) -> Explained:
    """Maps of ``classes`` (1 or 2 class indices: object, then second) on both views.

    ``box``: the written word's pixel box in ``subject``'s coordinates; the share of each map
    inside it is measured on both views (on the reference view it is a control: the same input
    region, without the word).
    """
    import torch

    images = [reference, subject]
    present = [i for i, image in enumerate(images) if image is not None]
    tensors = torch.stack([explainer.preprocess(images[i].convert("RGB")) for i in present])
    side, n_roles = explainer.map_side, len(classes)
    maps: dict[str, np.ndarray] = {}
    full: dict[str, np.ndarray] = {}
    for method in explainer.methods:
        values = np.full((len(VIEWS), len(ROLES), explainer.input_side, explainer.input_side),
                         np.nan, np.float32)
        if method == "gradcam":
            if explainer.gradcam_layer is None:
                raise ValueError("gradcam needs a Grad-CAM layer")
            batch = tensors.repeat_interleave(n_roles, dim=0)
            targets = [c for _ in present for c in classes]
            computed = gradcam_maps(explainer.head, explainer.gradcam_layer, batch, targets)
            computed = computed.reshape(len(present), n_roles, *computed.shape[-2:])
        else:
            computed = occlusion_maps(explainer.head, tensors, [classes] * len(present),
                                      explainer.occlusion_window, explainer.occlusion_stride,
                                      explainer.occlusion_fill, explainer.batch_size)
        for slot, view in enumerate(present):
            values[view, :n_roles] = computed[slot]
        full[method] = values
        maps[method] = downsample(values, side).astype(np.float16)

    views = np.zeros((len(VIEWS), DISPLAY_SIDE, DISPLAY_SIDE, 3), np.uint8)
    for view in present:
        seen = model_view(explainer.preprocess, images[view])
        views[view] = np.asarray(Image.fromarray(seen).resize(
            (DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.BILINEAR))
    result = Explained(maps, views, np.zeros((side, side), np.float32))
    if box is not None:
        mask = box_mask(explainer.preprocess, subject.size, box)
        result.box = downsample(mask, side)
        for method, values in full.items():
            shares = mass_inside(values, mask)  # (views, roles)
            for view in present:
                for role in range(n_roles):
                    result.mass.append({"view": VIEWS[view], "method": method,
                                        "role": ROLES[role], "class_index": int(classes[role]),
                                        "mass_in_box": float(shares[view, role]),
                                        "box_fraction": float(mask.mean())})
    return result
