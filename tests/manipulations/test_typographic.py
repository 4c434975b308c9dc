"""Typographic attacks (SPEC §4): the published synthetic protocol and seed 000's post-it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageColor, ImageDraw
from pydantic import ValidationError

from cliprobe.config.loading import manipulation_params
from cliprobe.errors import ConfigError
from cliprobe.manipulations import ImageContext, ManipulationNotApplicable, get
from cliprobe.manipulations.typographic import (
    FONT_FILES,
    PROTOCOL_COLOURS,
    PostitParams,
    TypographicParams,
    break_lines,
    font_path,
    postit_box,
    resize_centre_crop,
)
from cliprobe.seeding import image_rng

CLASSES = ("apple", "coffee mug", "laptop", "Granny_Smith")
GREY = (128, 128, 128)


def _context(label: str = "apple", classes: tuple[str, ...] = CLASSES) -> ImageContext:
    return ImageContext(image_id="x", label=label, class_names=classes)


def _typographic(image: Image.Image, image_id: str, params: TypographicParams | None = None,
                 label: str = "apple", classes: tuple[str, ...] = CLASSES):
    return get("typographic")(image, params or TypographicParams(),
                              image_rng(0, image_id, "typographic"), _context(label, classes))


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records every multiline_text call (position, text, font, colours) of the module."""
    calls: list[dict[str, Any]] = []
    original = ImageDraw.ImageDraw.multiline_text

    def record(self: ImageDraw.ImageDraw, xy: Any, text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append({"xy": xy, "text": text, "size": self.im.size, **kwargs})
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "multiline_text", record)
    return calls


def test_registered_with_context_and_without() -> None:
    assert get("typographic").needs_context and get("typographic").params_model is TypographicParams
    assert not get("postit").needs_context and get("postit").params_model is PostitParams


def test_writes_a_class_other_than_the_true_one_chosen_uniformly() -> None:
    image = Image.new("RGB", (224, 224), GREY)
    seen = []
    for i in range(120):
        info = _typographic(image, f"img{i}").info
        assert info["word_label"] in CLASSES and info["word_label"] != "apple"
        seen.append(info["word_label"])
    counts = {name: seen.count(name) for name in CLASSES[1:]}
    assert all(25 <= n <= 55 for n in counts.values()), counts  # ~40 each


def test_seeded_per_image_id() -> None:
    image = Image.new("RGB", (300, 240), GREY)
    first, again = _typographic(image, "a/1.jpg"), _typographic(image, "a/1.jpg")
    assert first.info == again.info
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    others = [np.asarray(_typographic(image, f"a/{i}.jpg").image) for i in range(2, 6)]
    assert not all(np.array_equal(np.asarray(first.image), o) for o in others)


def test_text_fits_inside_the_image_and_is_shrunk_to_fit(drawn: list[dict[str, Any]]) -> None:
    image = Image.new("RGB", (224, 224), GREY)
    params = TypographicParams(size_range=(120, 120))  # far too big for "coffee mug"
    for i in range(20):
        _typographic(image, f"img{i}", params, classes=("apple", "coffee mug"))
    canvas = ImageDraw.Draw(Image.new("RGB", (224, 224)))
    for call in drawn:
        left, top, right, bottom = canvas.multiline_textbbox(
            call["xy"], call["text"], font=call["font"], stroke_width=call["stroke_width"])
        assert left >= 0 and top >= 0 and right <= 224 and bottom <= 224, call
        assert call["font"].size < 120
        assert call["text"] == "coffee\nmug"


def test_font_size_range_fonts_and_colours(drawn: list[dict[str, Any]]) -> None:
    image = Image.new("RGB", (224, 224), GREY)
    for i in range(80):
        _typographic(image, f"img{i}", classes=("apple", "dog"))
    expected_fonts = {str(font_path(name)) for name in ("serif", "monospace", "sans")}
    assert {Path(call["font"].path).name for call in drawn} == {
        FONT_FILES[name] for name in ("serif", "monospace", "sans")}
    assert {str(call["font"].path) for call in drawn} == expected_fonts
    assert all(20 <= call["font"].size <= 40 for call in drawn)  # a short word always fits
    assert all(call["fill"] != call["stroke_fill"] for call in drawn)
    assert {call["fill"] for call in drawn} == set(PROTOCOL_COLOURS)
    assert {call["stroke_fill"] for call in drawn} == set(PROTOCOL_COLOURS)
    assert all(call["stroke_width"] == 1 for call in drawn)


def test_output_changes_pixels_only_where_the_text_is() -> None:
    image = Image.new("RGB", (224, 224), GREY)
    result = np.asarray(_typographic(image, "img").image).astype(int)
    changed = np.argwhere((result != np.array(GREY)).any(axis=2))
    assert len(changed) > 50
    height = changed[:, 0].max() - changed[:, 0].min()
    width = changed[:, 1].max() - changed[:, 1].min()
    assert height < 120 and width < 224


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dog", "dog"),
        ("coffee mug", "coffee\nmug"),
        ("big red dog", "big\nred dog"),
        ("a b c d", "a b\nc d"),
        ("a b c d e", "a b\nc d e"),
        ("  spaced   out  ", "spaced\nout"),
    ],
)
def test_line_breaking_rule(name: str, expected: str) -> None:
    assert break_lines(name) == expected


def test_published_construction_is_torchvision_resize_and_centre_crop() -> None:
    from torchvision import transforms

    rng = np.random.default_rng(0)
    for size in [(300, 200), (200, 301), (224, 224), (640, 481)]:
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        reference = transforms.Compose([
            transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
        ])(image)
        assert np.array_equal(np.asarray(resize_centre_crop(image)), np.asarray(reference))


def test_constructions_set_the_output_size() -> None:
    image = Image.new("RGB", (500, 320), GREY)
    assert _typographic(image, "i").image.size == (224, 224)
    full = _typographic(image, "i", TypographicParams(construction="full_resolution"))
    assert full.image.size == (500, 320)


def test_underscores_are_written_as_spaces_and_the_class_is_kept() -> None:
    image = Image.new("RGB", (224, 224), GREY)
    info = _typographic(image, "i", classes=("apple", "Granny_Smith")).info
    assert {k: info[k] for k in ("word", "word_label")} == {"word": "Granny Smith",
                                                             "word_label": "Granny_Smith"}
    raw = _typographic(image, "i", TypographicParams(underscores_as_spaces=False),
                       classes=("apple", "Granny_Smith")).info
    assert raw["word"] == "Granny_Smith"


@pytest.mark.parametrize("construction", ["defense_prefix", "full_resolution"])
def test_the_recorded_word_box_holds_all_the_ink_and_touches_it(construction: str) -> None:
    # a single colour pair (white on black) on a grey image: every non-grey pixel is ink
    params = TypographicParams(construction=construction, colours=["white", "black"])
    for image_id in ("a", "b", "c"):
        result = _typographic(Image.new("RGB", (320, 240), GREY), image_id, params)
        ink = (np.asarray(result.image) != np.array(GREY)).any(axis=2)
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        left, top, right, bottom = result.info["word_box"]
        assert left <= cols[0] and cols[-1] < right and top <= rows[0] and rows[-1] < bottom
        # tight: the ink reaches within a few pixels of every side (glyph side bearings)
        assert cols[0] - left <= 4 and right - 1 - cols[-1] <= 4
        assert rows[0] - top <= 4 and bottom - 1 - rows[-1] <= 4


def test_a_single_class_dataset_cannot_be_attacked() -> None:
    with pytest.raises(ManipulationNotApplicable, match="only one class"):
        _typographic(Image.new("RGB", (64, 64)), "i", classes=("apple",))


def test_caption_images_get_a_vocabulary_word_their_captions_do_not_use() -> None:
    """A caption dataset: no class (label ""), the vocabulary as class names, and the words
    the image's captions use excluded (writing "dog" on a dog photo would be no attack)."""
    words = ("dog", "bus", "pizza", "clock")
    image = Image.new("RGB", (224, 224), GREY)
    written = set()
    for i in range(60):
        context = ImageContext(image_id=f"c{i}", label="", class_names=words,
                               excluded_words=("dog", "clock"))
        info = get("typographic")(image, TypographicParams(), image_rng(0, f"c{i}", "t"),
                                  context).info
        written.add(info["word_label"])
    assert written == {"bus", "pizza"}
    every = ImageContext(image_id="c", label="", class_names=words, excluded_words=words)
    with pytest.raises(ManipulationNotApplicable, match=r"source\.words"):
        get("typographic")(image, TypographicParams(), image_rng(0, "c", "t"), every)


def test_input_image_is_not_modified() -> None:
    image = Image.new("RGB", (224, 224), GREY)
    _typographic(image, "i")
    get("postit")(image, PostitParams(), image_rng(0, "i", "postit"), _context())
    assert (np.asarray(image) == np.array(GREY)).all()


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"fonts": ["comic-sans"]}, "fonts"),
        ({"colours": ["red", "red"]}, "colours"),
        ({"colours": ["red", "#ff0000"]}, "colours"),
        ({"colours": ["red"]}, "colours"),
        ({"colours": ["red", "ultraviolet"]}, "colours"),
        ({"size_range": [40, 20]}, "size_range"),
        ({"construction": "imagenet_c"}, "construction"),
        ({"stroke": 2}, "stroke"),
    ],
)
def test_bad_typographic_params_name_their_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"manipulation\.typo\.{key}"):
        manipulation_params("typo", "typographic", params)


def test_fonts_accept_a_file_path() -> None:
    path = str(font_path("sans"))
    assert TypographicParams(fonts=[path]).fonts == [path]
    with pytest.raises(ValidationError):
        TypographicParams(fonts=["/no/such/font.ttf"])


# --- post-it -------------------------------------------------------------------------------

def _postit(image: Image.Image, seed_key: str = "i", **params: Any):
    return get("postit")(image, PostitParams(**params), image_rng(0, seed_key, "postit"),
                         _context())


def _box_of_colour(image: Image.Image, colour: str) -> tuple[int, int, int, int]:
    pixels = np.asarray(image)
    mask = (pixels == np.array(ImageColor.getrgb(colour))).all(axis=2)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", (15, 15, 135, 135)),        # margin 0.05 x 300 = 15 px, box 0.3 x 400
        ("center", (140, 90, 260, 210)),
        ("bottom-right", (265, 165, 385, 285)),
        ("top", (140, 15, 260, 135)),
    ],
)
def test_postit_box_is_drawn_where_asked(position: str, expected: tuple[int, ...]) -> None:
    image = Image.new("RGB", (400, 300), GREY)
    result = _postit(image, position=position)
    assert postit_box(image.size, PostitParams(position=position)) == expected
    assert _box_of_colour(result.image, PostitParams().box_colour) == expected
    ink = _box_of_colour(result.image, "black")  # the word, inside the box
    assert expected[0] < ink[0] and ink[2] < expected[2]
    assert expected[1] < ink[1] and ink[3] < expected[3]
    assert result.info == {"word": "CAT", "word_label": "cat", "word_box": list(expected)}


def test_postit_xy_size_colours_and_label() -> None:
    image = Image.new("RGB", (400, 300), GREY)
    result = _postit(image, xy=(0.25, 0.5), relative_size=0.5, aspect=0.5, word="iPod",
                     word_label="iPod", box_colour="white", text_colour="red")
    assert _box_of_colour(result.image, "white") == (0, 100, 200, 200)  # centre (100, 150)
    assert result.info == {"word": "iPod", "word_label": "iPod", "word_box": [0, 100, 200, 200]}
    red = _box_of_colour(result.image, "red")
    assert red[2] - red[0] > 0.6 * 200  # the text fills most of the box's width


def test_postit_box_is_clamped_inside_the_image() -> None:
    assert postit_box((400, 300), PostitParams(xy=(1.0, 0.0), relative_size=0.5)) == (
        200, 0, 400, 200)


def test_postit_is_deterministic_unless_jittered() -> None:
    image = Image.new("RGB", (200, 200), GREY)
    plain = [np.asarray(_postit(image, seed_key=k).image) for k in ("a", "b")]
    assert np.array_equal(*plain)
    jittered = [np.asarray(_postit(image, seed_key=k, jitter=0.2).image) for k in ("a", "b")]
    assert not np.array_equal(*jittered)
    again = np.asarray(_postit(image, seed_key="a", jitter=0.2).image)
    assert np.array_equal(jittered[0], again)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"relative_size": 0}, "relative_size"),
        ({"relative_size": 1.5}, "relative_size"),
        ({"position": "middle"}, "position"),
        ({"box_colour": "post-it"}, "box_colour"),
        ({"font": "papyrus"}, "font"),
        ({"word": ""}, "word"),
    ],
)
def test_bad_postit_params_name_their_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"manipulation\.note\.{key}"):
        manipulation_params("note", "postit", params)
    with pytest.raises(ConfigError, match=r"manipulation\.note"):
        manipulation_params("note", "postit", {"xy": [1.5, 0.5]})
