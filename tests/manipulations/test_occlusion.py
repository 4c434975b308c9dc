"""Seed 000's experiment 4: keep one part of the image, hide random patches, and `sequence`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageColor

from cliprobe.config.loading import manipulation_params
from cliprobe.embedding.reader import manipulation_step
from cliprobe.errors import ConfigError
from cliprobe.manipulations import ImageContext, get
from cliprobe.manipulations.occlusion import KeepPartParams, PatchOcclusionParams, kept_box

CONF = Path(__file__).resolve().parents[2] / "conf" / "manipulation"
GREY = np.array(ImageColor.getrgb("#808080"))
NEW_CELLS = ["keep_upper", "keep_lower", "keep_left", "keep_right", "patch_occlusion",
             "postit_lower_half"]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())  # 451 x 300, no pure grey pixel


def _conf(cell: str) -> tuple[str, dict]:
    raw = yaml.safe_load((CONF / f"{cell}.yaml").read_text())
    assert list(raw) == [cell]
    entry = dict(raw[cell])
    return entry.pop("function"), entry


def _step(cell: str, seed: int = 0):
    function, params = _conf(cell)
    return manipulation_step(get(function), manipulation_params(cell, function, params), cell,
                             seed)


def _context(image_id: str) -> ImageContext:
    return ImageContext(image_id, "cat", ("cat", "dog"))


@pytest.mark.parametrize(("part", "expected"), [
    ("upper", (0, 0, 451, 150)), ("lower", (0, 150, 451, 300)),
    ("left", (0, 0, 226, 300)), ("right", (225, 0, 451, 300)),
])
def test_keep_part_keeps_exactly_that_part(photo: Image.Image, part: str,
                                           expected: tuple[int, ...]) -> None:
    result = get("keep_part")(photo, KeepPartParams(part=part, fraction=0.5),
                              np.random.default_rng(0), _context("x"))
    assert kept_box(photo.size, part, 0.5) == expected
    assert result.info == {"kept_box": list(expected)}
    out, original = np.asarray(result.image), np.asarray(photo)
    left, top, right, bottom = expected
    assert np.array_equal(out[top:bottom, left:right], original[top:bottom, left:right])
    hidden = np.ones(out.shape[:2], bool)
    hidden[top:bottom, left:right] = False
    assert (out[hidden] == GREY).all()
    assert result.image.size == photo.size


def test_keep_part_fraction_and_fill(photo: Image.Image) -> None:
    result = get("keep_part")(photo, KeepPartParams(part="lower", fraction=0.25, fill="white"),
                              np.random.default_rng(0), _context("x"))
    out = np.asarray(result.image)
    assert (out[:225] == 255).all() and not (out[225:] == 255).all(axis=2).all()
    assert kept_box((10, 10), "upper", 0.01) == (0, 0, 10, 1)  # never an empty part


def test_patch_occlusion_covers_the_recorded_boxes_only(photo: Image.Image) -> None:
    result = _step("patch_occlusion")(photo, _context("img"))
    boxes = result.info["occluded_boxes"]
    assert len(boxes) == 4
    out, original = np.asarray(result.image), np.asarray(photo)
    covered = np.zeros(out.shape[:2], bool)
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top == 60  # 0.2 x short side 300
        assert left >= 0 and right <= 451 and top >= 0 and bottom <= 300
        covered[top:bottom, left:right] = True
    assert (out[covered] == GREY).all()
    assert np.array_equal(out[~covered], original[~covered])


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_each_new_cell_is_deterministic_per_image(photo: Image.Image, cell: str) -> None:
    first = _step(cell)(photo, _context("img-1"))
    np.random.seed(7)  # disturbing numpy's global state changes nothing
    again = _step(cell)(photo, _context("img-1"))
    assert first.image.tobytes() == again.image.tobytes() and first.info == again.info


def test_patches_are_seeded_per_image_cell_and_seed(photo: Image.Image) -> None:
    outputs = {
        _step("patch_occlusion")(photo, _context("a")).image.tobytes(),
        _step("patch_occlusion")(photo, _context("b")).image.tobytes(),
        _step("patch_occlusion", seed=1)(photo, _context("a")).image.tobytes(),
    }
    assert len(outputs) == 3


def test_patches_are_identical_in_another_process(photo: Image.Image, tmp_path: Path) -> None:
    photo.save(tmp_path / "photo.png")
    script = (
        "import sys, hashlib; from PIL import Image;"
        "from cliprobe.manipulations import get, ImageContext;"
        "from cliprobe.config.loading import manipulation_params;"
        "from cliprobe.embedding.reader import manipulation_step;"
        "p = manipulation_params('c', 'sequence', {'steps': ["
        "{'function': 'patch_occlusion'}, {'function': 'postit', 'jitter': 0.2}]});"
        "step = manipulation_step(get('sequence'), p, 'c', 0);"
        "out = step(Image.open(sys.argv[1]).convert('RGB'), ImageContext('a', 'cat', ()));"
        "print(hashlib.sha256(out.image.tobytes()).hexdigest())"
    )
    digest = subprocess.run([sys.executable, "-c", script, str(tmp_path / "photo.png")],
                            capture_output=True, text=True, check=True).stdout.strip()
    params = manipulation_params("c", "sequence", {"steps": [
        {"function": "patch_occlusion"}, {"function": "postit", "jitter": 0.2}]})
    here = manipulation_step(get("sequence"), params, "c", 0)(photo, _context("a"))
    import hashlib

    assert hashlib.sha256(here.image.tobytes()).hexdigest() == digest


def test_sequence_equals_its_steps_applied_by_hand(photo: Image.Image) -> None:
    result = _step("postit_lower_half")(photo, _context("img"))
    lower = get("keep_part")(photo, KeepPartParams(part="lower", fraction=0.5),
                             np.random.default_rng(0), _context("img"))
    from cliprobe.manipulations.typographic import PostitParams

    by_hand = get("postit")(lower.image, PostitParams(word="CAT", xy=(0.5, 0.75)),
                            np.random.default_rng(0), _context("img"))
    assert result.image.tobytes() == by_hand.image.tobytes()
    # the info of both steps; the note sits in the visible lower half
    assert result.info["kept_box"] == [0, 150, 451, 300]
    assert result.info["word_label"] == "cat"
    _, top, _, bottom = result.info["word_box"]
    assert top >= 150 and bottom <= 300


def test_sequence_drops_boxes_a_resizing_step_would_invalidate(photo: Image.Image) -> None:
    params = manipulation_params("s", "sequence", {"steps": [
        {"function": "postit"}, {"function": "random_square_crop", "side_fraction": 0.5}]})
    result = manipulation_step(get("sequence"), params, "s", 0)(photo, _context("a"))
    assert result.image.size == (150, 150)
    assert result.info == {"word": "CAT", "word_label": "cat"}  # no stale word_box


def test_sequence_records_every_default_and_names_bad_steps() -> None:
    params = manipulation_params("s", "sequence", {"steps": [{"function": "keep_part"}]})
    assert params.model_dump() == {"steps": [{"function": "keep_part", "part": "lower",
                                              "fraction": 0.5, "fill": "#808080"}]}
    with pytest.raises(ConfigError, match=r"manipulation\.s\.steps.*steps\[1\]\.fraction"):
        manipulation_params("s", "sequence", {"steps": [
            {"function": "keep_part"}, {"function": "keep_part", "fraction": 2}]})
    with pytest.raises(ConfigError, match=r"steps\[0\]\.function: unknown manipulation"):
        manipulation_params("s", "sequence", {"steps": [{"function": "nope"}]})
    with pytest.raises(ConfigError, match=r"steps\[0\].*'function' key"):
        manipulation_params("s", "sequence", {"steps": [{"part": "lower"}]})
    with pytest.raises(ConfigError, match=r"manipulation\.s\.steps"):
        manipulation_params("s", "sequence", {"steps": []})


@pytest.mark.parametrize(("params", "key"), [
    ({"part": "middle"}, "part"), ({"fraction": 0}, "fraction"), ({"fill": "sky"}, "fill"),
])
def test_bad_keep_part_params_name_their_key(params: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"manipulation\.k\.{key}"):
        manipulation_params("k", "keep_part", params)


@pytest.mark.parametrize(("params", "key"), [
    ({"n_patches": 0}, "n_patches"), ({"patch_size": 1.5}, "patch_size"),
])
def test_bad_patch_params_name_their_key(params: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"manipulation\.p\.{key}"):
        manipulation_params("p", "patch_occlusion", params)
    assert PatchOcclusionParams().n_patches == 4
