"""Pixels and boxes through the model's own preprocessing, whatever it is.

open_clip's eval transforms are a resize (shortest side, longest side with padding, or
squash), a crop, and a per-channel affine normalisation. Rather than re-implementing each
mode, a box is drawn as a white-on-black mask image of the original's size and pushed through
the very same transform; the normalisation is undone with the transform's response to an
all-black and an all-white image. So the mask lands exactly where the model sees the box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw


def _affine(preprocess: Callable[[Image.Image], Any], size: tuple[int, int]) -> tuple[Any, Any]:
    """(offset, scale) per channel and pixel: ``preprocess(img) = offset + scale * img/255``."""
    black = preprocess(Image.new("RGB", size, (0, 0, 0)))
    white = preprocess(Image.new("RGB", size, (255, 255, 255)))
    return black, white - black


def box_mask(preprocess: Callable[[Image.Image], Any], size: tuple[int, int],
             box: Sequence[float]) -> np.ndarray:
    """``(S, S)`` float32 in [0, 1]: the share of each input pixel covered by ``box``.

    ``box`` is ``(left, top, right, bottom)`` in pixels of an image of ``size`` (width,
    height), right/bottom exclusive. Edge pixels get fractions from the resize's interpolation.
    """
    mask = Image.new("RGB", size, (0, 0, 0))
    left, top, right, bottom = (float(v) for v in box)
    ImageDraw.Draw(mask).rectangle((left, top, right - 1, bottom - 1), fill=(255, 255, 255))
    offset, scale = _affine(preprocess, size)
    channel = ((preprocess(mask) - offset) / scale)[0]
    return np.clip(np.asarray(channel, dtype=np.float32), 0.0, 1.0)


def fill_value(preprocess: Callable[[Image.Image], Any], colour: str) -> Any:
    """The normalised ``(3,)`` input value of a colour (the occlusion patch's fill)."""
    return preprocess(Image.new("RGB", (8, 8), ImageColor.getrgb(colour)))[:, 0, 0]


def model_view(preprocess: Callable[[Image.Image], Any], image: Image.Image) -> np.ndarray:
    """What the model sees of ``image``: ``(S, S, 3)`` uint8, normalisation undone."""
    offset, scale = _affine(preprocess, image.size)
    pixels = (preprocess(image.convert("RGB")) - offset) / scale
    return np.clip(np.asarray(pixels).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
