"""load_rgb on a generated corpus of bad inputs: each is loaded right or skipped with a reason."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bad_inputs import CASES, CASES_BY_NAME, Case, write_corpus
from cliprobe.embedding.reader import ManifestImages
from cliprobe.images import ImageSkipped, load_rgb


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """The bad-input corpus in a temporary folder, and the names of the cases written."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    return folder, {case.name for case in write_corpus(folder)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, corpus: tuple[Path, set[str]]) -> None:
    """Each case is either loaded as 8-bit RGB (right size, orientation, colours) or skipped."""
    folder, written = corpus
    if case.name not in written and case.kind != "missing":
        pytest.skip(f"this file system cannot hold {case.filename!r}")
    path = case.path_in(folder)
    if not case.loads:
        with pytest.raises(ImageSkipped) as raised:
            load_rgb(path)
        assert case.skip_reason in raised.value.reason
        # reasons go into the output metadata: no machine-specific path in them
        assert os.fsdecode(folder) not in raised.value.reason
        assert raised.value.path == os.fsdecode(path)
        return
    image = load_rgb(path)
    assert image.mode == "RGB"
    array = np.asarray(image)
    assert array.dtype == np.uint8 and array.shape == (image.height, image.width, 3)
    assert image.size == case.size
    if case.check is not None:
        case.check(array)


def test_non_utf8_name_loads_through_str_path_too(corpus: tuple[Path, set[str]]) -> None:
    """The manifest holds ``str`` paths: the surrogate-escaped form must open the same file."""
    folder, written = corpus
    case = CASES_BY_NAME["non_utf8_file_name"]
    if case.name not in written:
        pytest.skip("this file system cannot hold non-UTF-8 names")
    as_str = os.path.join(os.fsdecode(folder), case.manifest_path)
    assert "\udce9" in as_str
    via_str = np.asarray(load_rgb(as_str))
    np.testing.assert_array_equal(via_str, np.asarray(load_rgb(case.path_in(folder))))
    np.testing.assert_array_equal(via_str, np.asarray(load_rgb(Path(as_str))))


def test_exif_orientation_applied_before_manipulation(corpus: tuple[Path, set[str]]) -> None:
    """The manipulation (here a recording transform) sees the upright image."""
    folder, _ = corpus
    case = CASES_BY_NAME["exif_orientation_6"]
    seen: list[np.ndarray] = []

    def record(image: Image.Image, image_id: str) -> Image.Image:
        seen.append(np.asarray(image))
        return image

    manifest = pd.DataFrame({"image_id": ["r"], "path": [case.manifest_path], "label": ["x"]})
    item = ManifestImages(manifest, folder, record, lambda image: image)[0]
    assert item.skip_reason is None
    assert seen[0].shape == (40, 20, 3)
    assert case.check is not None
    case.check(seen[0])


@pytest.mark.parametrize("pixels", [144, 400], ids=["between_1x_and_2x_limit", "over_2x_limit"])
def test_pixel_limit_is_enforced(
    pixels: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow warns between 1x and 2x MAX_IMAGE_PIXELS and raises above: both are refused."""
    side = int(pixels**0.5)
    path = tmp_path / "small_but_over_limit.png"
    Image.new("RGB", (side, side), (1, 2, 3)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # restored after the test
    with pytest.raises(ImageSkipped, match="decompression bomb refused"):
        load_rgb(path)
    monkeypatch.undo()
    assert load_rgb(path).size == (side, side)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about each corrupt EXIF
def test_loader_only_ever_raises_image_skipped(tmp_path: Path) -> None:
    """Random byte flips in small JPEG/PNG/GIF/WebP files: an image or ImageSkipped, no crash.

    Flips in a JPEG are aimed at its EXIF block: before the fix, about 3% of those crashed
    load_rgb with TypeError/struct.error from ``ImageOps.exif_transpose`` re-serialising it
    (with this seed the old loader crashed within the first JPEG trials).
    """
    rng = np.random.default_rng(20240605)
    image = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "camera maker"
    exif[0x0110] = "model"
    exif[0x011A] = 72.0
    exif[0x0131] = "software"
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}  # a GPS sub-IFD
    originals = {}
    for fmt in ("JPEG", "PNG", "GIF", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **({"exif": exif} if fmt != "GIF" else {}))
        originals[fmt] = buffer.getvalue()
    exif_start = originals["JPEG"].find(b"Exif\x00\x00") + 6
    exif_length = int.from_bytes(originals["JPEG"][exif_start - 8 : exif_start - 6], "big") - 8
    outcomes = {"loaded": 0, "skipped": 0}
    path = tmp_path / "mutated"
    trials = {"JPEG": 400, "PNG": 40, "GIF": 40, "WEBP": 40}
    for fmt, data in originals.items():
        for _ in range(trials[fmt]):
            mutated = bytearray(data)
            low = exif_start if fmt == "JPEG" else 0
            high = exif_start + exif_length if fmt == "JPEG" else len(data)
            for position in rng.integers(low, high, size=rng.integers(1, 6)):
                mutated[position] = int(rng.integers(0, 256))
            path.write_bytes(bytes(mutated))
            try:
                loaded = load_rgb(path)
            except ImageSkipped:
                outcomes["skipped"] += 1
            else:
                assert loaded.mode == "RGB"
                outcomes["loaded"] += 1
    assert sum(outcomes.values()) == sum(trials.values())


def test_corpus_case_names_are_unique() -> None:
    """Test ids are unique (pytest would silently suffix duplicates)."""
    assert len(CASES_BY_NAME) == len(CASES)


def test_a_crop_box_cuts_the_stored_pixels_before_the_exif_rotation(
    corpus: tuple[Path, set[str]]
) -> None:
    """Boxes are annotated on the stored pixel grid (revisitop: ``pil_loader(path).crop(bbx)``);
    the crop then turns upright like every image. Pillow rounds the box's corners."""
    folder, _ = corpus
    case = CASES_BY_NAME["exif_orientation_6"]
    path = case.path_in(folder)
    box = [2.4, 5.0, 30.6, 15.5]  # stored image is 40x20 (width x height)
    with Image.open(path) as stored:
        expected = stored.convert("RGB").crop(box).transpose(Image.Transpose.ROTATE_270)
    cropped = load_rgb(path, box)
    assert cropped.size == (round(15.5) - 5, round(30.6) - 2)
    np.testing.assert_array_equal(np.asarray(cropped), np.asarray(expected))
    with pytest.raises(ImageSkipped, match="empty crop box"):
        load_rgb(path, [10, 10, 10.2, 30])


def test_draft_decodes_large_jpegs_at_a_reduced_scale_only_when_asked(tmp_path: Path) -> None:
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((1200, 900))
    big = tmp_path / "big.jpg"
    photo.save(big, quality=95)
    assert load_rgb(big).size == (1200, 900)  # exact decoding by default
    assert load_rgb(big, draft=224).size == (300, 225)  # 1/4: both sides stay >= 224
    assert load_rgb(big, draft=256).size == (600, 450)  # 1/2
    small = tmp_path / "small.jpg"
    photo.resize((400, 300)).save(small, quality=95)
    assert np.array_equal(np.asarray(load_rgb(small, draft=256)), np.asarray(load_rgb(small)))
    png = tmp_path / "big.png"
    photo.save(png)
    assert load_rgb(png, draft=224).size == (1200, 900)  # only JPEG has DCT scaling
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    photo.save(rotated, quality=95, exif=exif)
    assert load_rgb(rotated, draft=224).size == (225, 300)  # upright after the draft
