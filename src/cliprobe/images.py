"""Load an image file as an RGB PIL image, or say precisely why it cannot be used.

Every image passes through :func:`load_rgb` before any manipulation, so EXIF orientation,
16-bit, palette, alpha and CMYK files reach the manipulations as plain 8-bit RGB, and broken
files become an :class:`ImageSkipped` with a reason instead of a crash.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Fail on truncated files instead of silently decoding grey padding.
ImageFile.LOAD_TRUNCATED_IMAGES = False

ALPHA_BACKGROUND = (255, 255, 255)


class ImageSkipped(Exception):
    """An image that cannot be used; ``reason`` is a short, loggable description."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float images to 8 bit (PIL's convert would clip them)."""
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
    return Image.fromarray(np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB; transparent pixels become white."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        image = _to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def load_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully, apply its EXIF orientation and return 8-bit RGB.

    Raises :class:`ImageSkipped` for empty, truncated, non-image, oversized (decompression
    bomb) and degenerate files.
    """
    file = Path(path)
    try:
        if file.stat().st_size == 0:
            raise ImageSkipped(path, "empty file (0 bytes)")
    except OSError as error:
        raise ImageSkipped(path, f"cannot read file: {error.strerror or error}") from None
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat both as bombs.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened) or opened
                rgb = to_rgb(image)
                rgb.load()
    except ImageSkipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageSkipped(path, f"decompression bomb refused: {error}") from None
    except UnidentifiedImageError:
        raise ImageSkipped(path, "not an image file Pillow can identify") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageSkipped(path, f"corrupt or truncated image: {error}") from None
    if min(rgb.size) < 1:
        raise ImageSkipped(path, f"degenerate image size {rgb.size}")
    return rgb
