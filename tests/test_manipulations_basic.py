"""Seed 001's manipulations, pinned against the seed's own code (SPEC §3)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cliprobe.embedding.reader import manipulation_transform
from cliprobe.manipulations import get, names
from cliprobe.manipulations.basic import GaussianBlurParams, RandomSquareCropParams
from cliprobe.manipulations.registry import NoParams


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())  # 451 x 300 RGB


def test_registry_lists_seed_manipulations() -> None:
    assert {"identity", "gaussian_blur", "random_square_crop", "greyscale"} <= set(names())
    with pytest.raises(KeyError, match="valid"):
        get("no_such_manipulation")


def test_blur_equals_seed_001_per_channel_code(photo: Image.Image) -> None:
    rng = np.random.default_rng(0)
    ours = np.asarray(get("gaussian_blur").apply(photo, GaussianBlurParams(sigma=3.0), rng))
    pixels = np.asarray(photo)
    seed = np.stack([ndimage.gaussian_filter(pixels[:, :, c], sigma=3) for c in range(3)], axis=2)
    np.testing.assert_array_equal(ours, seed)
    assert ours.shape == pixels.shape


def test_crop_is_a_square_of_the_short_side_inside_the_image(photo: Image.Image) -> None:
    crop = get("random_square_crop")
    lefts = set()
    for i in range(50):
        out = crop.apply(photo, RandomSquareCropParams(), np.random.default_rng(i))
        assert out.size == (300, 300)
        # find the crop's offset by matching the first row
        row = np.asarray(out)[0]
        full = np.asarray(photo)
        matches = [x for x in range(0, 452 - 300) if np.array_equal(full[0, x : x + 300], row)]
        assert matches, "crop is not a window of the image"
        lefts.add(matches[0])
    assert len(lefts) > 10, "crop position should vary uniformly along the long side"


def test_crop_fraction_shrinks_the_square(photo: Image.Image) -> None:
    out = get("random_square_crop").apply(
        photo, RandomSquareCropParams(side_fraction=0.5), np.random.default_rng(0)
    )
    assert out.size == (150, 150)


def test_crop_is_seeded_per_image_not_per_call(photo: Image.Image) -> None:
    crop = get("random_square_crop")
    transform = manipulation_transform(crop, RandomSquareCropParams(), "cropped", 0)
    first = np.asarray(transform(photo, "img-1"))
    again = np.asarray(transform(photo, "img-1"))
    other_ids = [np.asarray(transform(photo, f"img-{i}")) for i in range(2, 12)]
    np.testing.assert_array_equal(first, again)
    assert any(not np.array_equal(first, o) for o in other_ids)
    other_seed = manipulation_transform(crop, RandomSquareCropParams(), "cropped", 1)
    assert any(
        not np.array_equal(np.asarray(transform(photo, f"i{i}")),
                           np.asarray(other_seed(photo, f"i{i}")))
        for i in range(10)
    )


def test_grey_is_luminance_on_three_channels(photo: Image.Image) -> None:
    out = np.asarray(get("greyscale").apply(photo, NoParams(), np.random.default_rng(0)))
    luminance = np.asarray(photo.convert("L"))
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], luminance)


def test_identity_returns_the_image(photo: Image.Image) -> None:
    assert get("identity").apply(photo, NoParams(), np.random.default_rng(0)) is photo
