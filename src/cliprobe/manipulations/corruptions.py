"""ImageNet-C corruptions (Hendrycks & Dietterich 2019, SPEC §5) as registry entries.

The 15 benchmark corruptions and the 4 extra ones are registered as ``imagenet_c_<corruption>``
(``imagenet_c_gaussian_noise``, ...; the prefix keeps them apart from seed 001's
``gaussian_blur``). All share :class:`CorruptionParams`: a severity 1-5, the construction,

- ``imagenet_c``: Resize(256) on the short side + CenterCrop(224), then corrupt, exactly the
  order of the original dataset (so every output is 224x224);
- ``full_resolution``: corrupt the image as it is (at least 32x32 pixels, the library's limit),

and the encoding of the result:

- ``imagenet_c_jpeg`` (the default): what the released dataset went through in Hendrycks'
  ``ImageNet-C/create_c/make_imagenet_c.py``: ``np.uint8`` (truncation) of the corrupted
  pixels, then a JPEG file at quality 85 (``save(..., quality=85, optimize=True)``), read back;
- ``lossless``: the corrupted pixels as 8 bits (``np.uint8`` truncation, the library's own
  pixels), no JPEG.

Two more entries make CE comparable and let users evaluate on the official images:

- ``imagenet_c_clean``: the construction alone, no corruption: the clean images CE's clean
  error must come from (Hendrycks' clean error is the Resize(256) + CenterCrop(224) val set,
  not the model's own preprocessing of the full image, which the ``original`` cell is);
- ``imagenet_c_released``: the released ImageNet-C image of the same validation image
  (``<corruption>/<severity>/<wnid>/<file>.JPEG``), which the dataset's fetch stage took from
  the released tarballs (:mod:`cliprobe.datasets.sources.imagenet_c`).

The pixels come from ``imagecorruptions`` (the maintained fork ``imagecorruptions-imaug``, same
import name), imported on first use because it pulls in numba, OpenCV and scikit-image. The
library draws from numpy's global RNG, so the entries declare ``uses_global_rng`` and the caller
seeds it per image; the two functions that would otherwise draw fresh OS entropy (glass_blur,
impulse_noise) get a seed drawn from that global RNG.

Even with ``imagenet_c_jpeg`` the images are not byte-identical to the released set: the
library re-implements some corruptions (motion_blur and snow without ImageMagick,
elastic_transform without the random affine step, pixelate upsampling with NEAREST instead of
BOX) and draws other random numbers; ``imagenet_c_released`` is the way to the official images.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from cliprobe.manipulations.registry import (
    Construction,
    ImageContext,
    ManipulationFn,
    ManipulationNotApplicable,
    register,
)

#: The 15 corruptions of the benchmark, in the paper's (and SPEC §5's) order.
IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
#: The 4 extra ("held-out") corruptions; not part of mCE.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = IMAGENET_C_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

FAMILIES: dict[str, str] = {
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise"), "noise"),
    **dict.fromkeys(("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"), "blur"),
    **dict.fromkeys(("snow", "frost", "fog", "brightness"), "weather"),
    **dict.fromkeys(("contrast", "elastic_transform", "pixelate", "jpeg_compression"), "digital"),
    **dict.fromkeys(EXTRA_CORRUPTIONS, "extra"),
}

REGISTRY_PREFIX = "imagenet_c_"
#: The original construction: torchvision Resize(256) (bilinear on PIL) + CenterCrop(224).
RESIZE_SHORT_SIDE = 256
CROP_SIDE = 224
#: ``imagecorruptions.corrupt`` refuses smaller images; several corruptions degenerate below it.
MIN_SIDE = 32

#: Library functions that take a ``seed`` and otherwise seed themselves from OS entropy.
_SEEDED_BY_ARGUMENT = frozenset({"glass_blur", "impulse_noise"})


def registry_name(corruption: str) -> str:
    """The registry name of an ImageNet-C corruption: ``imagenet_c_<corruption>``."""
    if corruption not in ALL_CORRUPTIONS:
        raise ValueError(
            f"unknown ImageNet-C corruption {corruption!r}; valid: {', '.join(ALL_CORRUPTIONS)}"
        )
    return REGISTRY_PREFIX + corruption


#: How the released dataset's files were written (make_imagenet_c.py): JPEG, quality 85.
RELEASED_JPEG_QUALITY = 85

ConstructionName = Literal["imagenet_c", "full_resolution"]


class ConstructionParams(BaseModel):
    """The construction alone (``imagenet_c_clean``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    construction: ConstructionName = Field(
        default="imagenet_c",
        description="imagenet_c: Resize(256) + CenterCrop(224), as the original dataset; "
        "full_resolution: the image as it is",
    )


class CorruptionParams(ConstructionParams):
    """Parameters shared by every ImageNet-C corruption."""

    severity: int = Field(ge=1, le=5, strict=True, description="ImageNet-C severity, 1-5")
    encoding: Literal["imagenet_c_jpeg", "lossless"] = Field(
        default="imagenet_c_jpeg",
        description="imagenet_c_jpeg: 8-bit truncation and a quality-85 JPEG round trip, as the "
        "released dataset was written; lossless: the 8-bit (truncated) pixels, no JPEG",
    )


class ReleasedParams(BaseModel):
    """Which released ImageNet-C image replaces the clean one (``imagenet_c_released``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corruption: Literal[ALL_CORRUPTIONS] = Field(  # type: ignore[valid-type]
        description="one of the 15 + 4 ImageNet-C corruptions")
    severity: int = Field(ge=1, le=5, strict=True, description="ImageNet-C severity, 1-5")


def imagenet_c_construction(image: Image.Image) -> Image.Image:
    """Resize(256) on the short side (bilinear) + CenterCrop(224), as torchvision on PIL.

    Mirrors ``torchvision.transforms.Resize(256)`` and ``CenterCrop(224)`` (the long side is
    truncated, the crop offset rounded half to even), so the output is always 224x224.
    """
    width, height = image.size
    if width <= height:
        new_width = RESIZE_SHORT_SIDE
        new_height = int(RESIZE_SHORT_SIDE * height / width)
    else:
        new_height = RESIZE_SHORT_SIDE
        new_width = int(RESIZE_SHORT_SIDE * width / height)
    if (new_width, new_height) != (width, height):
        image = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    top = round((new_height - CROP_SIDE) / 2.0)
    left = round((new_width - CROP_SIDE) / 2.0)
    return image.crop((left, top, left + CROP_SIDE, top + CROP_SIDE))


def released_encoding(pixels: np.ndarray) -> Image.Image:
    """What make_imagenet_c.py stored: ``np.uint8`` of the pixels (truncation, not rounding),
    saved as a JPEG at quality 85 (``optimize=True``), here read back as 8-bit RGB."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.uint8(pixels)).save(buffer, format="JPEG",
                                           quality=RELEASED_JPEG_QUALITY, optimize=True)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _to_rgb8(result: Any, size: tuple[int, int], corruption: str,
             encoding: str = "lossless") -> Image.Image:
    """The library's output (float array in [0, 255] or PIL image) as 8-bit RGB PIL, encoded
    as ``encoding`` says (see :class:`CorruptionParams`).

    Converted as ``imagecorruptions.corrupt`` and Hendrycks's ImageNet-C script convert it,
    ``np.uint8(x)``, which truncates (182.9 -> 182), so the ``lossless`` pixels are the
    library's own, byte for byte; values outside [0, 255] (which ``np.uint8`` would wrap) are
    clipped first. ``imagenet_c_jpeg`` then stores those pixels as the released set did.
    """
    pixels = np.asarray(result)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    width, height = size
    if pixels.shape != (height, width, 3):
        raise ValueError(
            f"{corruption} returned an array of shape {pixels.shape} for a {width}x{height} "
            "RGB image"
        )
    if pixels.dtype != np.uint8:
        pixels = pixels.astype(np.float64)
        if not np.isfinite(pixels).all():
            # e.g. spatter divides by the maximum of an all-zero layer on very small images
            raise ManipulationNotApplicable(
                f"{corruption} produced non-finite pixels on a {width}x{height} image")
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if encoding == "imagenet_c_jpeg":
        return released_encoding(pixels)
    return Image.fromarray(np.ascontiguousarray(pixels))


def _rgb_construction(image: Image.Image) -> Image.Image:
    """The ``imagenet_c`` construction of any image, as :func:`corrupt` applies it."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    return imagenet_c_construction(rgb)


#: The ``imagenet_c`` construction as a registry step: computed once per image and dataset by
#: the embed runner, shared by all 95 cells of a sweep. Bump the name if its pixels change.
IMAGENET_C_CONSTRUCTION = Construction("imagenet_c-v1", _rgb_construction,
                                       size=(CROP_SIDE, CROP_SIDE))


def construction_of(params: ConstructionParams) -> Construction | None:
    """The construction step these params start with (None for ``full_resolution``)."""
    return IMAGENET_C_CONSTRUCTION if params.construction == "imagenet_c" else None


def corrupt(image: Image.Image, corruption: str, params: CorruptionParams) -> Image.Image:
    """Apply one ImageNet-C corruption; reads numpy's global RNG (seed it first).

    Returns an 8-bit RGB image: 224x224 with ``construction="imagenet_c"``, the input's size
    with ``"full_resolution"``. Raises :class:`ManipulationNotApplicable` when the image is too
    small for the library (full resolution under 32 pixels) or the library's output on it is
    not finite, and ``ValueError`` when the library returns another shape (a bug).
    """
    step = construction_of(params)
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    return corrupt_constructed(step.apply(rgb) if step is not None else rgb, corruption, params)


def corrupt_constructed(rgb: Image.Image, corruption: str,
                        params: CorruptionParams) -> Image.Image:
    """:func:`corrupt` of an RGB image that already went through :func:`construction_of`."""
    from imagecorruptions import corruption_dict  # slow: numba, cv2, skimage

    if corruption not in corruption_dict:
        raise ValueError(f"imagecorruptions has no corruption {corruption!r}")
    if params.construction == "full_resolution" and min(rgb.size) < MIN_SIDE:
        raise ManipulationNotApplicable(
            f"{corruption} needs an image of at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
            f"{rgb.size[0]}x{rgb.size[1]}; use construction=imagenet_c (resizes to 224x224)"
        )
    kwargs: dict[str, int] = {}
    if corruption in _SEEDED_BY_ARGUMENT:
        # drawn from the per-image seeded global RNG, so reruns give identical pixels
        kwargs["seed"] = int(np.random.randint(0, 2**31 - 1))
    result = corruption_dict[corruption](rgb, params.severity, **kwargs)
    return _to_rgb8(result, rgb.size, corruption, params.encoding)


def construct(image: Image.Image, construction: str) -> Image.Image:
    """The RGB image as the construction prepares it for corrupting (no corruption)."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    return imagenet_c_construction(rgb) if construction == "imagenet_c" else rgb


def warm_up(corruption: str) -> None:
    """Import the library (numba, OpenCV, scikit-image: seconds) and compile glass_blur's numba
    kernel on a tiny image, so processes forked afterwards start ready."""
    from imagecorruptions import corruption_dict

    if corruption == "glass_blur":
        corruption_dict[corruption](np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8), 1, seed=0)


def _make_entry(corruption: str) -> ManipulationFn:
    """Register ``imagenet_c_<corruption>`` as a module-level (hence picklable) function."""
    name = registry_name(corruption)

    def apply(
        image: Image.Image, params: CorruptionParams, rng: np.random.Generator
    ) -> Image.Image:
        return corrupt(image, corruption, params)

    def after_construction(
        image: Image.Image, params: CorruptionParams, rng: np.random.Generator
    ) -> Image.Image:
        return corrupt_constructed(image, corruption, params)

    label = corruption.replace("_", " ")
    kind = "extra corruption" if FAMILIES[corruption] == "extra" else FAMILIES[corruption]
    apply.__doc__ = f"ImageNet-C {label} ({kind}), severity 1-5 (imagecorruptions)."
    apply.__name__ = apply.__qualname__ = name
    apply.__module__ = __name__
    setattr(sys.modules[__name__], name, apply)
    return register(name, CorruptionParams, uses_global_rng=True, construction=construction_of,
                    after_construction=after_construction,
                    warm_up=partial(warm_up, corruption))(apply)


for _corruption in ALL_CORRUPTIONS:
    _make_entry(_corruption)
del _corruption

#: Registry names of the clean reference and of the released images.
CLEAN_FUNCTION = REGISTRY_PREFIX + "clean"
RELEASED_FUNCTION = REGISTRY_PREFIX + "released"


def _constructed_clean(
    image: Image.Image, params: ConstructionParams, rng: np.random.Generator
) -> Image.Image:
    return image  # the construction is all there is


@register(CLEAN_FUNCTION, ConstructionParams, construction=construction_of,
          after_construction=_constructed_clean)
def imagenet_c_clean(
    image: Image.Image, params: ConstructionParams, rng: np.random.Generator
) -> Image.Image:
    """ImageNet-C's clean reference: the construction alone (CE's clean error comes from it)."""
    return construct(image, params.construction)


@register(RELEASED_FUNCTION, ReleasedParams, needs_context=True)
def imagenet_c_released(
    image: Image.Image, params: ReleasedParams, rng: np.random.Generator, context: ImageContext
) -> Image.Image:
    """The released ImageNet-C image of this validation image (fetched with the dataset)."""
    from cliprobe.datasets.sources.imagenet_c import released_path
    from cliprobe.images import ImageSkipped, load_rgb

    file = released_path(Path(context.image_root), params.corruption, params.severity,
                         context.image_id)
    try:
        return load_rgb(file)
    except ImageSkipped as skipped:  # a logged skip (n_not_applicable), not a stopped stage
        raise ManipulationNotApplicable(
            f"no usable released ImageNet-C image {params.corruption}/{params.severity}/"
            f"{context.image_id} ({skipped.reason}); fetch it with "
            "dataset.<name>.source.imagenet_c") from None
