"""Which part of the object matters (seed 000's experiment 4): keep one part of the image, or
hide random patches of it.

- ``keep_part``: keep the upper / lower / left / right ``fraction`` of the image and fill the
  rest with a colour (seed 000 photographed "only the lower part of the egg").
- ``patch_occlusion``: ``n_patches`` squares of side ``patch_size`` x the short side, filled
  with a colour, placed uniformly at random inside the image (seeded per image).

Both keep the image size, so a later step of a ``sequence`` (a post-it, say) draws in the same
coordinates, and both record what they covered in the image's ``info`` (pixel boxes
``[left, top, right, bottom]``, right/bottom exclusive).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image, ImageColor, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cliprobe.manipulations.registry import Manipulated, register

#: The default fill: mid grey, the colour that moves CLIP's normalised input least.
GREY = "#808080"


def _known_colour(value: str) -> str:
    try:
        ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a colour name or #rrggbb code that Pillow knows")\
            from None
    return value


class KeepPartParams(BaseModel):
    """Keep one side of the image; ``fraction`` of its height (upper/lower) or width."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    part: Literal["upper", "lower", "left", "right"] = Field(
        default="lower", description="the part that stays visible")
    fraction: float = Field(default=0.5, gt=0, le=1, description="share of the height "
                            "(upper, lower) or width (left, right) that stays visible")
    fill: str = Field(default=GREY, description="colour of the hidden part")

    @field_validator("fill")
    @classmethod
    def _colour(cls, value: str) -> str:
        return _known_colour(value)


def kept_box(size: tuple[int, int], part: str, fraction: float) -> tuple[int, int, int, int]:
    """Pixel box ``(left, top, right, bottom)`` of the visible part (at least one pixel)."""
    width, height = size
    kept_height = max(1, round(height * fraction))
    kept_width = max(1, round(width * fraction))
    return {
        "upper": (0, 0, width, kept_height),
        "lower": (0, height - kept_height, width, height),
        "left": (0, 0, kept_width, height),
        "right": (width - kept_width, 0, width, height),
    }[part]


@register("keep_part", KeepPartParams)
def keep_part(image: Image.Image, params: KeepPartParams, rng: np.random.Generator) -> Manipulated:
    """Keep the upper / lower / left / right part of the image, fill the rest."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    box = kept_box(rgb.size, params.part, params.fraction)
    out = Image.new("RGB", rgb.size, params.fill)
    out.paste(rgb.crop(box), box[:2])
    return Manipulated(out, {"kept_box": list(box)})


class PatchOcclusionParams(BaseModel):
    """Random square patches over the image, seeded per image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_patches: int = Field(default=4, ge=1, description="patches per image (they may overlap)")
    patch_size: float = Field(default=0.2, gt=0, le=1,
                              description="patch side as a fraction of the image's short side")
    fill: str = Field(default=GREY, description="colour of the patches")

    @field_validator("fill")
    @classmethod
    def _colour(cls, value: str) -> str:
        return _known_colour(value)


def patch_boxes(size: tuple[int, int], params: PatchOcclusionParams,
                rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """The patches' pixel boxes: top-left corners uniform over the places where they fit."""
    width, height = size
    side = max(1, round(params.patch_size * min(width, height)))
    boxes = []
    for _ in range(params.n_patches):
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        boxes.append((left, top, left + side, top + side))
    return boxes


@register("patch_occlusion", PatchOcclusionParams)
def patch_occlusion(
    image: Image.Image, params: PatchOcclusionParams, rng: np.random.Generator
) -> Manipulated:
    """Hide ``n_patches`` random squares of the image (seeded per image)."""
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    boxes = patch_boxes(out.size, params, rng)
    draw = ImageDraw.Draw(out)
    for left, top, right, bottom in boxes:
        draw.rectangle((left, top, right - 1, bottom - 1), fill=params.fill)
    return Manipulated(out, {"occluded_boxes": [list(box) for box in boxes]})
