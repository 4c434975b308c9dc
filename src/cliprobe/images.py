"""Load an image file as an RGB PIL image, or say precisely why it cannot be used.

Every image passes through :func:`load_rgb` before any manipulation, so EXIF orientation,
16-bit, palette, alpha and CMYK files reach the manipulations as plain 8-bit RGB, and broken
files become an :class:`ImageSkipped` with a reason instead of a crash. :func:`load_rgb`
raises nothing else for a bad file: a decoder bug on one odd file must not stop a stage.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

# Fail on truncated files instead of silently decoding grey padding.
ImageFile.LOAD_TRUNCATED_IMAGES = False

ALPHA_BACKGROUND = (255, 255, 255)

#: Longest side / shortest side above which an image is refused. CLIP preprocessing resizes the
#: shortest side to the model's input size, so a 1 x 100,000 sliver (a few hundred bytes as a
#: PNG) would be blown up to a multi-gigabyte image and kill the worker.
MAX_ASPECT_RATIO = 100.0

#: What :func:`load_rgb` accepts: ``str``, ``bytes`` (e.g. a non-UTF-8 name from
#: ``os.listdir(b".")``) or any path-like.
ImagePath = str | bytes | os.PathLike[str] | os.PathLike[bytes]

_WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageSkipped(Exception):
    """An image that cannot be used; ``reason`` is a short, loggable description."""

    def __init__(self, path: ImagePath, reason: str) -> None:
        self.path = os.fsdecode(path)
        super().__init__(f"{self.path}: {reason}")
        self.reason = reason


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float images to 8 bit (PIL's convert would clip them).

    A single-value ``transparency`` (tRNS of a 16-bit grey PNG) becomes an alpha channel.
    """
    array = np.asarray(image)
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        scaled = array.astype(np.float64) / 65535.0
    elif image.mode == "I":
        high = 65535.0 if array.max(initial=0) > 255 else 255.0
        scaled = array.astype(np.float64) / high
    else:  # "F"
        finite = np.nan_to_num(array.astype(np.float64))
        high = max(float(finite.max(initial=0.0)), 1.0)
        scaled = finite / high
    grey = Image.fromarray(np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8))
    transparency = image.info.get("transparency")
    if image.mode != "F" and isinstance(transparency, int):
        alpha = Image.fromarray(np.where(array == transparency, 0, 255).astype(np.uint8))
        return Image.merge("LA", (grey, alpha))
    return grey


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB; transparent pixels become white.

    Transparency may come from an alpha channel or from a ``transparency`` key (palette,
    grey or RGB PNG with a tRNS chunk); both are composited onto :data:`ALPHA_BACKGROUND`.
    """
    if image.mode in _WIDE_MODES:
        image = _to_8bit(image)
    if image.mode in {"P", "1", "L", "RGB"} and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def _orientation(image: Image.Image, name: str) -> int:
    """The EXIF (or XMP) orientation 1-8 of ``image``; invalid values count as 1 (upright)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as error:  # Pillow's EXIF parser raises many types
        raise ImageSkipped(
            name, f"unreadable EXIF metadata, orientation unknown ({type(error).__name__})"
        ) from None
    try:
        orientation = int(value)
    except (TypeError, ValueError):
        return 1
    return orientation if orientation in _ORIENTATION_TRANSPOSE else 1


def _upright(image: Image.Image, name: str,
             orientation_of: Image.Image | None = None) -> Image.Image:
    """A detached copy of ``image`` turned upright according to its EXIF orientation (that of
    ``orientation_of``, the decoded file, when ``image`` is a crop of it).

    Pillow's ``ImageOps.exif_transpose`` also re-serialises the EXIF block to drop the tag, and
    that crashes (TypeError, struct.error, AttributeError) on slightly malformed EXIF that it
    parsed fine; we only need the pixels, so transpose directly.
    """
    method = _ORIENTATION_TRANSPOSE.get(_orientation(orientation_of or image, name))
    return image.transpose(method) if method is not None else image.copy()


def _check_geometry(size: tuple[int, int], name: str) -> None:
    width, height = size
    if min(width, height) < 1:
        raise ImageSkipped(name, f"degenerate image size {width}x{height}")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageSkipped(
            name,
            f"degenerate aspect ratio {width}x{height} (over {MAX_ASPECT_RATIO:g}:1; "
            "resizing it for the model would need gigabytes)",
        )


def _cropped(image: Image.Image, box: Sequence[float], name: str) -> Image.Image:
    """``image`` cut to ``box`` = (x1, y1, x2, y2) in its stored pixel grid, by Pillow's crop
    (which rounds the corners), exactly as revisitop crops a query (``img.crop(bbx)``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if round(x2) <= round(x1) or round(y2) <= round(y1):
        raise ImageSkipped(name, f"empty crop box {[x1, y1, x2, y2]}")
    return image.crop((x1, y1, x2, y2))


def _decode(handle: IO[bytes], name: str, crop_box: Sequence[float] | None = None,
            draft: int | None = None) -> Image.Image:
    """Decode an open file to upright 8-bit RGB, translating every failure to ImageSkipped."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat both as bombs.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as opened:
                _check_geometry(opened.size, name)
                if draft and crop_box is None and opened.format == "JPEG":
                    # DCT-domain downscaling by 2, 4 or 8, never below draft x draft
                    opened.draft(None, (draft, draft))
                opened.load()
                stored = opened if crop_box is None else _cropped(opened, crop_box, name)
                rgb = to_rgb(_upright(stored, name, orientation_of=opened))
                rgb.load()
    except ImageSkipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageSkipped(name, f"decompression bomb refused: {error}") from None
    except UnidentifiedImageError:
        raise ImageSkipped(name, "not an image file Pillow can identify") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageSkipped(name, f"corrupt or truncated image: {error}") from None
    except Exception as error:  # the contract: ImageSkipped or an image
        raise ImageSkipped(
            name, f"undecodable image ({type(error).__name__}: {error})"
        ) from None
    return rgb


def load_rgb(path: ImagePath, crop_box: Sequence[float] | None = None,
             draft: int | None = None) -> Image.Image:
    """Decode ``path`` fully, apply its EXIF orientation and return 8-bit RGB.

    ``crop_box`` (x1, y1, x2, y2), in the stored pixel grid as annotations are (revisited
    Oxford / Paris query boxes), cuts the image before it is turned upright.

    ``draft`` (opt-in, pixels differ): decode a JPEG at 1/2, 1/4 or 1/8 scale when both sides
    stay at least ``draft`` pixels (Pillow's ``draft``), much faster for large photos. Ignored
    with a ``crop_box`` (the box is in the full-resolution pixel grid).

    ``path`` may be ``bytes`` (a non-UTF-8 file name on Linux). Raises :class:`ImageSkipped`
    (and nothing else) for missing, unreadable, non-regular, empty, truncated, non-image,
    oversized (decompression bomb), degenerate (size or aspect ratio) and otherwise
    undecodable files. Reasons never contain the path, so they are the same on every machine.
    """
    name = os.fsdecode(path)
    try:
        info = os.stat(name)
    except OSError as error:
        raise ImageSkipped(name, f"cannot read file: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageSkipped(name, "not a regular file")
    if info.st_size == 0:
        raise ImageSkipped(name, "empty file (0 bytes)")
    try:
        handle = open(name, "rb")  # noqa: SIM115 - closed below, after decoding
    except OSError as error:
        raise ImageSkipped(name, f"cannot read file: {error.strerror or error}") from None
    with handle:
        return _decode(handle, name, crop_box, draft)
