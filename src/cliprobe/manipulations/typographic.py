"""Typographic attacks (SPEC §4): a word written over the image.

- ``typographic``: the published synthetic protocol (Azuma & Matsui 2023, "Defense-Prefix",
  ``datasets/utils/make_dataset_train.py`` of azuma164/Defense-Prefix): resize the short side to
  224 (bicubic) and centre-crop 224, write a class name other than the true one in a random
  font, size, fill and stroke colour, at a random position where it fits.
- ``postit``: seed 000's variant, a fixed word ("CAT") on a filled note-coloured box at a
  configurable position and relative size.

Fonts are the DejaVu fonts that matplotlib ships in ``mpl-data/fonts/ttf`` (always installed
with cliprobe, licence in ``LICENSE_DEJAVU`` next to them): ``serif`` = DejaVuSerif.ttf (for
the protocol's Roman / Times), ``monospace`` = DejaVuSansMono.ttf (for its Courier), ``sans`` =
DejaVuSans.ttf, ``stix`` = matplotlib's STIXGeneral.ttf (a Times-like serif), and ``-bold``
variants of the DejaVu ones. Any path to a ``.ttf`` / ``.otf`` file works too. Text is laid out
with Pillow's basic layout engine, so the pixels do not depend on whether libraqm is installed.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cliprobe.manipulations.registry import (
    ImageContext,
    Manipulated,
    ManipulationNotApplicable,
    register,
)

#: The protocol's eight colours (PIL colour names, so "green" is #008000 as in the original).
PROTOCOL_COLOURS: tuple[str, ...] = (
    "white", "blue", "green", "red", "magenta", "cyan", "yellow", "black",
)  # fmt: skip
#: Font aliases -> file names in matplotlib's ``mpl-data/fonts/ttf``.
FONT_FILES: dict[str, str] = {
    "serif": "DejaVuSerif.ttf",
    "monospace": "DejaVuSansMono.ttf",
    "sans": "DejaVuSans.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "monospace-bold": "DejaVuSansMono-Bold.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "stix": "STIXGeneral.ttf",
}
#: Side of the published construction: Resize(224) on the short side + CenterCrop(224).
PROTOCOL_SIDE = 224
#: A post-it "canary yellow".
POSTIT_YELLOW = "#fff68f"


def font_path(font: str) -> Path:
    """The font file of an alias (``serif``, ``monospace``, ``sans``, ...) or of a path.

    Raises ``ValueError`` naming the valid aliases when neither exists.
    """
    if font in FONT_FILES:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_FILES[font]
    else:
        path = Path(font).expanduser()
    if not path.is_file():
        raise ValueError(
            f"font {font!r} is neither an alias ({', '.join(FONT_FILES)}) nor an existing "
            "font file"
        )
    return path


@functools.lru_cache(maxsize=256)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _check_colour(colour: str) -> str:
    try:
        ImageColor.getrgb(colour)
    except ValueError:
        raise ValueError(
            f"{colour!r} is not a colour name or #rrggbb code that Pillow knows"
        ) from None
    return colour


def break_lines(name: str) -> str:
    """The protocol's line breaking: 2-3 words break after the first, longer after the second.

    Words are separated by whitespace (runs of spaces count as one); one word stays one line.
    """
    words = name.split()
    if 2 <= len(words) <= 3:
        return words[0] + "\n" + " ".join(words[1:])
    if len(words) > 3:
        return " ".join(words[:2]) + "\n" + " ".join(words[2:])
    return " ".join(words)


def resize_centre_crop(image: Image.Image, side: int = PROTOCOL_SIDE) -> Image.Image:
    """Resize the short side to ``side`` (bicubic) and centre-crop ``side`` x ``side``.

    Mirrors torchvision's ``Resize(side, BICUBIC)`` + ``CenterCrop(side)`` on PIL images (long
    side truncated, crop offset rounded), as the published construction does.
    """
    width, height = image.size
    if width <= height:
        new_size = (side, int(side * height / width))
    else:
        new_size = (int(side * width / height), side)
    if new_size != (width, height):
        image = image.resize(new_size, Image.Resampling.BICUBIC)
    top = round((new_size[1] - side) / 2.0)
    left = round((new_size[0] - side) / 2.0)
    return image.crop((left, top, left + side, top + side))


def text_box(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, stroke_width: int
) -> tuple[int, int, int, int]:
    """Ink box ``(left, top, right, bottom)`` of ``text`` drawn at (0, 0), stroke included."""
    box = draw.multiline_textbbox((0, 0), text, font=font, stroke_width=stroke_width)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


class TypographicParams(BaseModel):
    """The published synthetic typographic attack; sizes in pixels of the 224x224 image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    construction: Literal["defense_prefix", "full_resolution"] = Field(
        default="defense_prefix",
        description="defense_prefix: Resize(224, bicubic) + CenterCrop(224) first, as published; "
        "full_resolution: write on the image as it is, sizes scaled by short side / 224",
    )
    fonts: list[str] = Field(
        default_factory=lambda: ["serif", "monospace", "sans"], min_length=1,
        description="aliases (serif, monospace, sans, stix, *-bold) or .ttf paths; one is "
        "drawn uniformly per image",
    )
    size_range: tuple[int, int] = Field(
        default=(20, 40), description="font size drawn uniformly in [low, high], then shrunk "
        "by 1 until the text fits",
    )
    colours: list[str] = Field(
        default_factory=lambda: list(PROTOCOL_COLOURS), min_length=2,
        description="fill and stroke are two different colours drawn from this list",
    )
    stroke_width: int = Field(default=1, ge=0, description="outline width in pixels")
    underscores_as_spaces: bool = Field(
        default=True, description="write class names like 'Granny_Smith' as 'Granny Smith'"
    )

    @field_validator("fonts")
    @classmethod
    def _fonts_exist(cls, value: list[str]) -> list[str]:
        for font in value:
            font_path(font)
        return value

    @field_validator("colours")
    @classmethod
    def _colours_known_and_distinct(cls, value: list[str]) -> list[str]:
        for colour in value:
            _check_colour(colour)
        if len({ImageColor.getrgb(c) for c in value}) != len(value):
            raise ValueError("colours must be distinct (fill and stroke must differ)")
        return value

    @field_validator("size_range")
    @classmethod
    def _ordered_positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("size_range must be [low, high] with 1 <= low <= high")
        return value


def _scaled(value: int, scale: float) -> int:
    return max(1, round(value * scale))


@register("typographic", TypographicParams, needs_context=True)
def typographic(
    image: Image.Image,
    params: TypographicParams,
    rng: np.random.Generator,
    context: ImageContext,
) -> Manipulated:
    """Write a random wrong class name over the image (Azuma & Matsui 2023 protocol).

    Draws, in this order and from ``rng`` only: the class name (uniform among the dataset's
    classes except the true one; on a caption dataset, among its vocabulary except the words
    its captions use, ``context.excluded_words``), the font, the fill colour, the stroke
    colour (uniform among the others), the font size, the position (uniform over the
    positions where the whole ink box, stroke included, lies inside the image). Returns the
    image (224x224 RGB with the published construction) and ``{"word": written text,
    "word_label": class name written, "word_box": [left, top, right, bottom]}`` (the text's
    ink box in pixels of the returned image, stroke included; the saliency scores measure how
    much of a map falls inside it).
    """
    excluded = {context.label, *context.excluded_words}
    candidates = [name for name in context.class_names if name not in excluded]
    if not candidates:
        raise ManipulationNotApplicable(
            f"typographic needs a class other than the image's own ({context.label!r}); the "
            "dataset has only one class" if not context.excluded_words else
            "typographic found no vocabulary word that the image's captions do not use; "
            "add words to the dataset's source.words"
        )
    rgb = image.convert("RGB") if image.mode != "RGB" else image.copy()
    if params.construction == "defense_prefix":
        rgb = resize_centre_crop(rgb, PROTOCOL_SIDE)
    width, height = rgb.size
    scale = 1.0 if params.construction == "defense_prefix" else min(width, height) / PROTOCOL_SIDE

    word_label = str(candidates[int(rng.integers(len(candidates)))])
    word = word_label.replace("_", " ") if params.underscores_as_spaces else word_label
    text = break_lines(word)
    font_file = str(font_path(params.fonts[int(rng.integers(len(params.fonts)))]))
    fill = params.colours[int(rng.integers(len(params.colours)))]
    others = [c for c in params.colours if c != fill]
    stroke = others[int(rng.integers(len(others)))]
    low, high = params.size_range
    size = int(rng.integers(_scaled(low, scale), _scaled(high, scale) + 1))
    stroke_width = _scaled(params.stroke_width, scale) if params.stroke_width else 0

    draw = ImageDraw.Draw(rgb)
    while True:
        font = _load_font(font_file, size)
        left, top, right, bottom = text_box(draw, text, font, stroke_width)
        if right - left < width and bottom - top < height:
            break
        if size == 1:
            raise ManipulationNotApplicable(
                f"the text {word!r} does not fit a {width}x{height} image")
        size -= 1
    x = int(rng.integers(0, width - (right - left) + 1))
    y = int(rng.integers(0, height - (bottom - top) + 1))
    draw.multiline_text(
        (x - left, y - top), text, font=font, fill=fill,
        stroke_width=stroke_width, stroke_fill=stroke,
    )
    word_box = [x, y, x + (right - left), y + (bottom - top)]
    return Manipulated(rgb, {"word": word, "word_label": word_label, "word_box": word_box})


POSITIONS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}


class PostitParams(BaseModel):
    """Seed 000's post-it: a word on a filled box; geometry as fractions of the image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    word: str = Field(default="CAT", min_length=1, description="the text written on the note")
    word_label: str | None = Field(
        default=None, description="the class the word stands for; null = word.lower()"
    )
    position: Literal[
        "center", "top-left", "top", "top-right", "left", "right",
        "bottom-left", "bottom", "bottom-right",
    ] = Field(default="center", description="where the box sits, inside a margin")  # fmt: skip
    xy: tuple[float, float] | None = Field(
        default=None, description="box centre as (x, y) fractions of width and height; "
        "overrides position (the box is moved inside the image if it would stick out)",
    )
    relative_size: float = Field(
        default=0.3, gt=0, le=1, description="box width as a fraction of the image width"
    )
    aspect: float = Field(default=1.0, gt=0, description="box height / box width")
    margin: float = Field(
        default=0.05, ge=0, lt=0.5, description="gap to the image edge for named positions, "
        "as a fraction of the image's short side",
    )
    box_colour: str = POSTIT_YELLOW
    text_colour: str = "black"
    font: str = Field(default="sans-bold", description="alias or font file path")
    text_fraction: float = Field(
        default=0.8, gt=0, le=1, description="the largest font whose text fits in this "
        "fraction of the box's width and height",
    )
    jitter: float = Field(
        default=0.0, ge=0, le=0.5, description="random shift of the box centre, uniform in "
        "+-jitter x (width, height), seeded per image; 0 = deterministic",
    )

    @field_validator("font")
    @classmethod
    def _font_exists(cls, value: str) -> str:
        font_path(value)
        return value

    @field_validator("box_colour", "text_colour")
    @classmethod
    def _known_colour(cls, value: str) -> str:
        return _check_colour(value)

    @model_validator(mode="after")
    def _xy_in_unit_square(self) -> PostitParams:
        if self.xy is not None and not all(0.0 <= v <= 1.0 for v in self.xy):
            raise ValueError("xy must be fractions in [0, 1]")
        return self


def postit_box(
    size: tuple[int, int], params: PostitParams, rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """The note's pixel box ``(left, top, right, bottom)`` (right/bottom exclusive).

    Named positions place the box flush with the margin (``top-left`` touches the top and left
    margins); ``xy`` places its centre. The box is then clamped to lie inside the image.
    """
    width, height = size
    box_width = max(1, min(width, round(params.relative_size * width)))
    box_height = max(1, min(height, round(box_width * params.aspect)))
    if params.xy is not None:
        centre_x, centre_y = params.xy[0] * width, params.xy[1] * height
    else:
        fx, fy = POSITIONS[params.position]
        gap = params.margin * min(width, height)
        centre_x = gap + box_width / 2 + fx * (width - 2 * gap - box_width)
        centre_y = gap + box_height / 2 + fy * (height - 2 * gap - box_height)
    if params.jitter and rng is not None:
        centre_x += float(rng.uniform(-params.jitter, params.jitter)) * width
        centre_y += float(rng.uniform(-params.jitter, params.jitter)) * height
    left = min(max(round(centre_x - box_width / 2), 0), width - box_width)
    top = min(max(round(centre_y - box_height / 2), 0), height - box_height)
    return left, top, left + box_width, top + box_height


@register("postit", PostitParams)
def postit(image: Image.Image, params: PostitParams, rng: np.random.Generator) -> Manipulated:
    """A word ("CAT") on a filled post-it box, at a set position and size (seed 000).

    Records ``word``, ``word_label`` and ``word_box``, the note's pixel box
    ``[left, top, right, bottom]`` (right/bottom exclusive).
    """
    rgb = image.convert("RGB") if image.mode != "RGB" else image.copy()
    left, top, right, bottom = postit_box(rgb.size, params, rng)
    draw = ImageDraw.Draw(rgb)
    draw.rectangle((left, top, right - 1, bottom - 1), fill=params.box_colour)
    # the largest font size whose ink fits text_fraction of the box (binary search)
    max_width = params.text_fraction * (right - left)
    max_height = params.text_fraction * (bottom - top)
    file = str(font_path(params.font))
    low, high = 1, max(1, bottom - top)
    while low < high:
        middle = (low + high + 1) // 2
        box = text_box(draw, params.word, _load_font(file, middle), 0)
        if box[2] - box[0] <= max_width and box[3] - box[1] <= max_height:
            low = middle
        else:
            high = middle - 1
    font = _load_font(file, low)
    ink_left, ink_top, ink_right, ink_bottom = text_box(draw, params.word, font, 0)
    x = (left + right) / 2 - (ink_left + ink_right) / 2
    y = (top + bottom) / 2 - (ink_top + ink_bottom) / 2
    draw.multiline_text((round(x), round(y)), params.word, font=font, fill=params.text_colour,
                        align="center")
    word_label = params.word_label if params.word_label is not None else params.word.lower()
    return Manipulated(rgb, {"word": params.word, "word_label": word_label,
                             "word_box": [left, top, right, bottom]})
