"""Saliency maps of the zero-shot decision: Grad-CAM and occlusion sensitivity.

Both explain one class's score of a :class:`ZeroShotHead` (the visual tower, L2
normalisation and the dataset's text classifier: ``logits = scale * normalize(f(x)) @ W``,
the zero-shot classifier of SPEC §2) for a batch of preprocessed images.

- :func:`gradcam_maps`: Grad-CAM (Selvaraju et al. 2017) of the class *logit*, computed by
  ``pytorch-grad-cam``'s ``GradCAM`` on the layer :func:`~cliprobe.saliency.towers.gradcam_layer`
  picks. As that library returns it: ReLU, min-max scaled to [0, 1] per map, bilinearly
  resized to the input side. A map that is zero everywhere means no positive evidence.
- :func:`occlusion_maps`: occlusion sensitivity (Zeiler & Fergus 2014), model-agnostic: a
  square of ``window`` x the input side, filled with a colour, slides with ``stride``; each
  pixel gets the mean, over the windows covering it, of the drop in the class's softmax
  probability (over all classifier classes) when that window is hidden. Negative values mean
  hiding the window *raised* the probability. Same definition as Captum's ``Occlusion`` with a
  constant baseline (checked against it in the tests); written here because it computes every
  class's drop from one pass over the windows, where Captum needs one pass per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cliprobe.saliency.towers import GradcamLayer


def zero_shot_head(visual: Any, class_weights: np.ndarray, scale: float = 100.0) -> Any:
    """A torch module mapping ``(B, 3, S, S)`` images to ``(B, C)`` zero-shot logits.

    ``class_weights`` is the classifier's ``(D, C)`` matrix W (unit columns).
    """
    import torch

    class ZeroShotHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = visual
            parameter = next(visual.parameters())
            self.register_buffer("weights", torch.as_tensor(
                np.asarray(class_weights), dtype=parameter.dtype, device=parameter.device))
            self.scale = float(scale)

        def forward(self, images: Any) -> Any:
            features = torch.nn.functional.normalize(self.visual(images), dim=-1)
            return self.scale * features @ self.weights

    return ZeroShotHead().eval()


def gradcam_maps(head: Any, layer: GradcamLayer, images: Any,
                 classes: Sequence[int]) -> np.ndarray:
    """Grad-CAM of ``classes[i]``'s logit on ``images[i]``: ``(B, S, S)`` float32 in [0, 1]."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    with GradCAM(model=head, target_layers=[layer.module],
                 reshape_transform=layer.reshape) as cam:
        maps = cam(input_tensor=images, targets=targets)
    return np.asarray(maps, dtype=np.float32)


def window_positions(side: int, window: int, stride: int) -> list[int]:
    """Top-left offsets along one axis; the last window always touches the far edge."""
    window = min(max(1, window), side)
    stride = max(1, stride)
    offsets = list(range(0, side - window + 1, stride))
    if offsets[-1] != side - window:
        offsets.append(side - window)
    return offsets


def occlusion_maps(head: Any, images: Any, classes: Sequence[Sequence[int]], window: int,
                   stride: int, fill: Any, batch_size: int = 16) -> np.ndarray:
    """Occlusion sensitivity: ``(B, K, S, S)`` float32, K = classes per image.

    ``images`` ``(B, 3, S, S)`` preprocessed; ``classes[i]`` the K class indices to explain on
    image i; ``window`` / ``stride`` in input pixels; ``fill`` the ``(3,)`` normalised value
    hidden windows take. Each pixel: mean over the windows covering it of
    ``p(class | image) - p(class | image with the window hidden)``.
    """
    import torch

    n_images, _, height, width = images.shape
    wanted = torch.as_tensor(np.asarray(classes, dtype=np.int64))
    side_h, side_w = min(window, height), min(window, width)
    boxes = [(top, left) for top in window_positions(height, window, stride)
             for left in window_positions(width, window, stride)]
    hidden_masks = torch.zeros((len(boxes), height, width), dtype=torch.bool)
    for slot, (top, left) in enumerate(boxes):
        hidden_masks[slot, top:top + side_h, left:left + side_w] = True
    coverage = hidden_masks.reshape(len(boxes), -1).double()  # (W, H*W)
    counts = coverage.sum(dim=0)
    fill = torch.as_tensor(fill, dtype=images.dtype).reshape(1, 3, 1, 1)
    maps = np.empty((n_images, wanted.shape[1], height, width), dtype=np.float32)
    with torch.inference_mode():
        base = torch.softmax(head(images).double(), dim=-1).gather(1, wanted)
        for index in range(n_images):
            drops = []
            for start in range(0, len(boxes), batch_size):
                masks = hidden_masks[start:start + batch_size, None]  # (b, 1, H, W)
                hidden = torch.where(masks, fill, images[index:index + 1])
                probs = torch.softmax(head(hidden).double(), dim=-1)[:, wanted[index]]
                drops.append(base[index] - probs)  # (b, K)
            # each pixel: the mean drop over the windows covering it
            summed = torch.cat(drops).T @ coverage  # (K, H*W)
            maps[index] = (summed / counts).reshape(-1, height, width).numpy()
    return maps


def downsample(maps: np.ndarray, side: int) -> np.ndarray:
    """``(..., S, S)`` -> ``(..., side, side)`` by area averaging (float32)."""
    import torch

    array = np.asarray(maps, dtype=np.float32)
    flat = torch.as_tensor(array.reshape(-1, 1, *array.shape[-2:]))
    small = torch.nn.functional.adaptive_avg_pool2d(flat, side)
    return small.numpy().reshape(*array.shape[:-2], side, side)
