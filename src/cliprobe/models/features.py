"""Image feature variants over a CLIP visual tower (SPEC §6, seed 002).

Every extractor takes a batch of *preprocessed* images ``(B, 3, H, W)`` (the model's own eval
transform) and an open_clip CLIP model (or a :class:`~cliprobe.models.loader.LoadedModel`), and
returns ``(B, D)`` float32 rows of unit L2 norm as a numpy array.

- ``global``: ``model.encode_image`` -- the CLIP embedding (``D`` = the model's ``embed_dim``).
- ``mac``: integral max-pooling -- per channel, the max over all spatial positions of the
  tower's final feature map (:func:`feature_map`).
- ``rmac``: regional max-pooling (Tolias et al. 2016) -- MAC of each region of
  :func:`rmac_regions` (scales 1..3), each L2-normalised, summed, L2-normalised. No per-region
  PCA-whitening (SPEC §6 does not ask for it).
- ``multipatch``: seed 002's "5 patches with 40% overlap" -- see :func:`multipatch_boxes`.

What the feature map is, exactly (:func:`feature_map`):

- **VisionTransformer** (ViT-B-32, the smoke model, ...): the output tokens of the *last*
  transformer block, *without* the class token, passed through the tower's final LayerNorm
  ``ln_post`` (applied per token) and then, per token, the output projection ``proj``
  (width -> embed_dim), arranged on the ``(H / patch, W / patch)`` patch grid. So ``D`` =
  ``embed_dim`` and the token features live in the same space as the CLIP embedding (which is
  the class token through the same ``ln_post`` and ``proj``). Obtained with open_clip's
  ``visual.forward_intermediates(..., indices=1, normalize_intermediates=True)``, which returns
  exactly those ``ln_post``-ed, class-token-free last-block tokens; nothing in the model is
  modified. For ViT-B-32 at 224 px the grid is 7 x 7.
- **ModifiedResNet** (RN50, RN101, ...): the output of ``layer4`` (after its final ReLU,
  *before* the attention pool ``attnpool``), captured with a forward hook; ``D`` = its channel
  count (2048 for RN50, not ``embed_dim``: the attention pool's projection is not applied). For
  RN50 at 224 px the map is 7 x 7.
- Other towers (timm backbones, attention-pooled CoCa ViTs) raise
  :class:`UnsupportedFeatureError`.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np

from cliprobe.config.schema import FeatureVariant
from cliprobe.errors import CliprobeError

FEATURE_VARIANTS: tuple[str, ...] = get_args(FeatureVariant)


class UnsupportedFeatureError(CliprobeError):
    """The requested feature variant cannot be computed for this model's visual tower."""


def _clip_model(model: Any) -> Any:
    """The open_clip CLIP module inside ``model`` (a LoadedModel is unwrapped)."""
    inner = getattr(model, "model", None)
    return inner if inner is not None and hasattr(inner, "visual") else model


def _prepare(images: Any, visual: Any) -> Any:
    parameter = next(visual.parameters())
    return images.to(device=parameter.device, dtype=parameter.dtype)


def _normalise(features: Any) -> np.ndarray:
    import torch

    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy().astype(np.float32, copy=False)


def global_features(images: Any, model: Any) -> np.ndarray:
    """``model.encode_image`` of ``(B, 3, H, W)``: ``(B, embed_dim)`` float32 unit rows."""
    import torch

    clip = _clip_model(model)
    with torch.inference_mode():
        return _normalise(clip.encode_image(_prepare(images, clip.visual)))


def feature_map(images: Any, model: Any) -> Any:
    """The final spatial feature map ``(B, C, h, w)`` float32 torch tensor (see module doc)."""
    import torch
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    visual = _clip_model(model).visual
    batch = _prepare(images, visual)
    with torch.inference_mode():
        if isinstance(visual, VisionTransformer) and getattr(visual, "attn_pool", None) is None:
            out = visual.forward_intermediates(
                batch, indices=1, normalize_intermediates=True, intermediates_only=True,
                output_fmt="NLC",
            )
            tokens = out["image_intermediates"][-1]  # (B, h*w, width), ln_post applied
            if visual.proj is not None:
                tokens = tokens @ visual.proj  # (B, h*w, embed_dim)
            grid_h = batch.shape[-2] // visual.patch_size[0]
            grid_w = batch.shape[-1] // visual.patch_size[1]
            return tokens.float().reshape(len(batch), grid_h, grid_w, -1).permute(0, 3, 1, 2)
        if isinstance(visual, ModifiedResNet):
            captured: list[Any] = []
            handle = visual.layer4.register_forward_hook(
                lambda _module, _inputs, output: captured.append(output)
            )
            try:
                visual(batch)
            finally:
                handle.remove()
            return captured[-1].float()
    raise UnsupportedFeatureError(
        f"feature variants mac, rmac need an open_clip VisionTransformer (without attention "
        f"pooling) or ModifiedResNet visual tower, but this model's is {type(visual).__name__}; "
        "use features 'global' or 'multipatch' for it"
    )


def mac_pool(fmap: Any) -> Any:
    """Integral max-pooling of ``(B, C, h, w)``: per channel max over positions, ``(B, C)``."""
    return fmap.amax(dim=(-2, -1))


def _starts(size: int, side: int, count: int) -> list[int]:
    """``count`` evenly spread start offsets of windows of ``side`` in ``size`` (floored)."""
    if count == 1:
        return [0]
    return [(i * (size - side)) // (count - 1) for i in range(count)]


def rmac_regions(height: int, width: int, scales: int = 3,
                 overlap: float = 0.4) -> list[tuple[int, int, int, int]]:
    """R-MAC regions ``(top, left, side, side)`` of an ``height x width`` grid, coarse to fine.

    Tolias et al. 2016 (their reference geometry): at scale ``l`` the regions are squares of
    side ``floor(2 * min(H, W) / (l + 1))``; ``l`` of them along the short side and
    ``l + m`` along the long side, evenly spread from one edge to the other (starts floored),
    where ``m`` (0 for a square grid, else 1..6) is the number of extra regions that makes
    neighbouring ``min(H, W)``-sized regions along the long side overlap closest to ``overlap``.
    So a square grid gets 1 + 4 + 9 = 14 regions for 3 scales; on a 7 x 7 grid the sides are
    7, 4, 3 and neighbouring regions overlap by 1/4 and 1/3 of their side at scales 2 and 3
    (the 40% target is continuous; integer grids floor it). Regions of side 0 are skipped.
    """
    short, long_ = min(height, width), max(height, width)
    extra = 0
    if long_ > short:
        best = None
        for steps in range(2, 8):
            stride = (long_ - short) / (steps - 1)
            gap = abs((short * short - short * stride) / (short * short) - overlap)
            if best is None or gap < best:
                best, extra = gap, steps - 1
    regions: list[tuple[int, int, int, int]] = []
    for level in range(1, scales + 1):
        side = (2 * short) // (level + 1)
        if side == 0:
            continue
        n_h = level + (extra if height > width else 0)
        n_w = level + (extra if width > height else 0)
        for top in _starts(height, side, n_h):
            for left in _starts(width, side, n_w):
                regions.append((top, left, side, side))
    return regions


def rmac_pool(fmap: Any, scales: int = 3, eps: float = 1e-6) -> Any:
    """R-MAC of ``(B, C, h, w)``: sum of L2-normalised region MACs, ``(B, C)`` (not normalised;
    the extractor normalises)."""
    import torch

    total = torch.zeros(fmap.shape[:2], dtype=fmap.dtype, device=fmap.device)
    for top, left, side_h, side_w in rmac_regions(fmap.shape[-2], fmap.shape[-1], scales):
        region = fmap[..., top : top + side_h, left : left + side_w].amax(dim=(-2, -1))
        total = total + region / (region.norm(dim=-1, keepdim=True) + eps)
    return total


def mac_features(images: Any, model: Any) -> np.ndarray:
    """MAC of the final feature map: ``(B, C)`` float32 unit rows."""
    return _normalise(mac_pool(feature_map(images, model)))


def rmac_features(images: Any, model: Any, scales: int = 3) -> np.ndarray:
    """R-MAC of the final feature map: ``(B, C)`` float32 unit rows."""
    return _normalise(rmac_pool(feature_map(images, model), scales))


def multipatch_boxes(height: int, width: int,
                     overlap: float = 0.4) -> list[tuple[int, int, int, int]]:
    """Seed 002's 5 patches ``(top, left, patch_h, patch_w)`` of an ``height x width`` image.

    The four corner patches and a centred one, all of the same size, chosen so that two
    neighbouring corner patches overlap by ``overlap`` of the patch side: side ``s`` with
    ``2 s - S = overlap * s``, i.e. ``s = round(S / (2 - overlap))`` per dimension (0.625 S for
    40%; 140 px of a 224 px input). The centre patch then overlaps each corner patch by
    ``(1 + overlap) / 2`` of its side per dimension (70% for 40%).
    """
    patch_h = min(height, round(height / (2.0 - overlap)))
    patch_w = min(width, round(width / (2.0 - overlap)))
    bottom, right = height - patch_h, width - patch_w
    return [
        (0, 0, patch_h, patch_w),
        (0, right, patch_h, patch_w),
        (bottom, 0, patch_h, patch_w),
        (bottom, right, patch_h, patch_w),
        (bottom // 2, right // 2, patch_h, patch_w),
    ]


def multipatch_features(images: Any, model: Any, overlap: float = 0.4) -> np.ndarray:
    """Seed 002's multi-patch feature: ``(B, embed_dim)`` float32 unit rows.

    Each of the 5 :func:`multipatch_boxes` is cut from the *preprocessed* image, resized back to
    the model's input size (bicubic), embedded with ``encode_image`` and L2-normalised; the 5
    unit vectors are averaged and the mean is L2-normalised. (Cutting the preprocessed tensor
    keeps the function's input the same as the other variants'; the patches are upsampled
    from 0.625 of the input side, so they are slightly blurrier than crops of the original
    photo would be.) Costs 5 forward passes per image.
    """
    import torch

    clip = _clip_model(model)
    batch = _prepare(images, clip.visual)
    height, width = batch.shape[-2:]
    crops = [
        torch.nn.functional.interpolate(
            batch[..., top : top + ph, left : left + pw].float(), size=(height, width),
            mode="bicubic", align_corners=False,
        ).to(batch.dtype)
        for top, left, ph, pw in multipatch_boxes(height, width, overlap)
    ]
    stacked = torch.stack(crops, dim=1).reshape(-1, *batch.shape[1:])  # (B*5, 3, H, W)
    with torch.inference_mode():
        per_patch = torch.nn.functional.normalize(clip.encode_image(stacked).float(), dim=-1)
    return _normalise(per_patch.reshape(len(batch), len(crops), -1).mean(dim=1))


def extract_features(variant: str, images: Any, model: Any, **params: Any) -> np.ndarray:
    """Dispatch to the extractor of ``variant``: ``(B, D)`` float32 unit rows."""
    if variant == "global":
        return global_features(images, model, **params)
    if variant == "mac":
        return mac_features(images, model, **params)
    if variant == "rmac":
        return rmac_features(images, model, **params)
    if variant == "multipatch":
        return multipatch_features(images, model, **params)
    raise ValueError(f"unknown feature variant {variant!r}; valid: {', '.join(FEATURE_VARIANTS)}")
