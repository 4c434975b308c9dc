"""The layer Grad-CAM reads, per visual tower; nothing in the model is modified.

- **VisionTransformer** (ViT-B-32, the smoke model, ...): the output of the last block's first
  LayerNorm (``transformer.resblocks[-1].ln_1``), i.e. the tokens entering the last attention
  layer. The last block's *output* would not do: only the class token reaches the embedding
  after it, so the patch tokens there get no gradient. The tokens (B, L, D) become a
  (B, D, h, w) map: the prefix (class) tokens are dropped and the patch tokens laid out row by
  row on the ``input side / patch size`` grid, the order ``conv1`` produced them in. This is
  the layer and reshape ``pytorch-grad-cam`` documents for ViTs (``blocks[-1].norm1``).
- **ModifiedResNet** (RN50, ...): the output of the last bottleneck of ``layer4``, the
  classic Grad-CAM layer (before the attention pool).
- Other towers (timm backbones, attention-pooled CoCa ViTs) raise
  :class:`UnsupportedSaliencyError`; occlusion sensitivity works on every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cliprobe.errors import CliprobeError


class UnsupportedSaliencyError(CliprobeError):
    """Grad-CAM has no known layer for this visual tower."""


@dataclass(frozen=True)
class GradcamLayer:
    """The module Grad-CAM hooks, how to turn its output into (B, C, h, w), and its name."""

    module: Any
    reshape: Callable[[Any], Any] | None
    name: str


def token_grid(tokens: Any, grid: tuple[int, int]) -> Any:
    """ViT tokens ``(B, L, D)`` -> ``(B, D, h, w)``: prefix tokens dropped, patches row-major."""
    height, width = grid
    patches = tokens[:, tokens.shape[1] - height * width:, :]
    return patches.reshape(tokens.shape[0], height, width, tokens.shape[2]).permute(0, 3, 1, 2)


def gradcam_layer(visual: Any, input_side: int) -> GradcamLayer:
    """The Grad-CAM layer of an open_clip visual tower at ``input_side`` pixels."""
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, VisionTransformer) and getattr(visual, "attn_pool", None) is None:
        grid = (input_side // visual.patch_size[0], input_side // visual.patch_size[1])
        return GradcamLayer(visual.transformer.resblocks[-1].ln_1,
                            lambda tokens: token_grid(tokens, grid),
                            "transformer.resblocks[-1].ln_1")
    if isinstance(visual, ModifiedResNet):
        return GradcamLayer(visual.layer4[-1], None, "layer4[-1]")
    raise UnsupportedSaliencyError(
        f"Grad-CAM has no known layer for a {type(visual).__name__} visual tower (ViT and "
        "ResNet towers are supported); remove gradcam from saliency.methods to use occlusion "
        "sensitivity only"
    )
