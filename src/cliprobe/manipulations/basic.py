"""Seed 001's manipulations: blur, random square crop, greyscale (SPEC §3)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from cliprobe.manipulations.registry import NoParams, register


@register("identity")
def identity(image: Image.Image, params: NoParams, rng: np.random.Generator) -> Image.Image:
    """The unmanipulated image (the `original` column)."""
    return image


class GaussianBlurParams(BaseModel):
    """sigma in pixels of the full-resolution image."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sigma: float = Field(default=3.0, gt=0)


@register("gaussian_blur", GaussianBlurParams)
def gaussian_blur(
    image: Image.Image, params: GaussianBlurParams, rng: np.random.Generator
) -> Image.Image:
    """Gaussian filter on each RGB channel separately, as seed 001 (scipy.ndimage, uint8)."""
    pixels = np.asarray(image.convert("RGB"))
    # sigma 0 on the channel axis = each channel filtered alone, exactly like the seed's
    # per-channel calls (same uint8 intermediate rounding); checked in the tests.
    blurred = ndimage.gaussian_filter(pixels, sigma=(params.sigma, params.sigma, 0))
    return Image.fromarray(blurred, mode="RGB")


class RandomSquareCropParams(BaseModel):
    """Side of the square as a fraction of min(width, height); 1.0 is seed 001's crop."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    side_fraction: float = Field(
        default=1.0, gt=0, le=1.0, description="a crop larger than the image is impossible"
    )


@register("random_square_crop", RandomSquareCropParams)
def random_square_crop(
    image: Image.Image, params: RandomSquareCropParams, rng: np.random.Generator
) -> Image.Image:
    """A square crop placed uniformly at random (seeded per image)."""
    width, height = image.size
    side = max(1, round(min(width, height) * params.side_fraction))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    return image.crop((left, top, left + side, top + side))


@register("greyscale")
def greyscale(image: Image.Image, params: NoParams, rng: np.random.Generator) -> Image.Image:
    """Luminance (PIL mode "L"), then back to three identical channels."""
    return image.convert("L").convert("RGB")
