"""Image <-> text recalls pinned on a hand-computed case with several captions per image."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.metrics import caption_retrieval as cr
from cliprobe.metrics.bootstrap import bootstrap_mean
from cliprobe.metrics.paired import paired_bootstrap


def unit(degrees: list[float]) -> np.ndarray:
    """Unit vectors in the plane at the given angles."""
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


# Images at 0, 90 and 180 degrees; image 0 has 3 captions, images 1 and 2 have 2 each.
IMAGES = unit([0, 90, 180])
CAPTIONS = unit([15, 80, 200, 120, 170, 230, 50])
OWNER = np.array([0, 0, 0, 1, 1, 2, 2])
# By hand (cosine = cos of the angle between them):
# caption 15 deg: images at 15, 75, 165 deg away -> its image (0) first            -> rank 0
# caption 80:     10 deg from image 1, 80 from its image 0                          -> rank 1
# caption 200:    20 from image 2, 110 from image 1, 160 from its image 0           -> rank 2
# caption 120:    30 from its image 1                                                -> rank 0
# caption 170:    10 from image 2, 80 from its image 1                              -> rank 1
# caption 230:    50 from its image 2, 130 / 140 from the others                    -> rank 0
# caption 50:     40 from image 1, 50 from image 0, 130 from its image 2            -> rank 2
TEXT_TO_IMAGE = [0, 1, 2, 0, 1, 0, 2]
# image 0: its caption at 15 deg is the closest of all seven                         -> rank 0
# image 1: best own caption 120 (30 deg); the caption at 80 (10 deg) is closer      -> rank 1
# image 2: best own caption 230 (50 deg); 170 (10 deg) and 200 (20 deg) are closer  -> rank 2
IMAGE_TO_TEXT = [0, 1, 2]


def test_ranks_match_the_hand_computed_case() -> None:
    ranks = cr.caption_ranks(IMAGES, CAPTIONS, OWNER)
    assert ranks.text_to_image.tolist() == TEXT_TO_IMAGE
    assert ranks.image_to_text.tolist() == IMAGE_TO_TEXT


def test_recalls_are_caption_and_image_fractions() -> None:
    ranks = cr.caption_ranks(IMAGES, CAPTIONS, OWNER)
    # text -> image: a fraction of the 7 captions (not the mean of per-image fractions,
    # which would be (1/3 + 1/2 + 1/2) / 3 = 0.444 at k = 1)
    assert cr.text_to_image_recall(ranks.text_to_image, 1) == pytest.approx(3 / 7)
    assert cr.text_to_image_recall(ranks.text_to_image, 2) == pytest.approx(5 / 7)
    assert cr.text_to_image_recall(ranks.text_to_image, 3) == 1.0
    # image -> text: a fraction of the 3 images with at least one own caption in the top k
    assert cr.image_to_text_recall(ranks.image_to_text, 1) == pytest.approx(1 / 3)
    assert cr.image_to_text_recall(ranks.image_to_text, 2) == pytest.approx(2 / 3)
    assert cr.image_to_text_recall(ranks.image_to_text, 3) == 1.0
    hits = cr.hits_per_image(ranks.text_to_image, OWNER, 3, 1)
    assert hits.tolist() == [1, 1, 1]
    assert cr.captions_per_image(OWNER, 3).tolist() == [3, 2, 2]


def test_ranks_do_not_depend_on_caption_order_or_block_size() -> None:
    order = np.array([6, 2, 4, 0, 5, 1, 3])
    ranks = cr.caption_ranks(IMAGES, CAPTIONS[order], OWNER[order], block=2)
    assert ranks.text_to_image.tolist() == [TEXT_TO_IMAGE[i] for i in order]
    assert ranks.image_to_text.tolist() == IMAGE_TO_TEXT


def _clip_benchmark_style(images: np.ndarray, texts: np.ndarray, owner: np.ndarray,
                          k: int) -> tuple[float, float]:
    """The top-k / one-hot formulation of CLIP_benchmark's recall_at_k, written out."""
    scores = texts @ images.T
    positive = np.zeros_like(scores, dtype=bool)
    positive[np.arange(len(texts)), owner] = True
    top_images = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    t2i = positive[np.arange(len(texts))[:, None], top_images].any(axis=1).mean()
    top_texts = np.argsort(-scores.T, axis=1, kind="stable")[:, :k]
    i2t = positive.T[np.arange(len(images))[:, None], top_texts].any(axis=1).mean()
    return float(t2i), float(i2t)


def test_ranks_agree_with_the_top_k_formulation_on_random_data() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 8)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    owner = np.concatenate([np.arange(40), rng.integers(0, 40, size=90)])
    texts = images[owner] + 0.9 * rng.normal(size=(len(owner), 8)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    ranks = cr.caption_ranks(images, texts, owner, block=17)
    for k in (1, 5, 10):
        t2i, i2t = _clip_benchmark_style(images, texts, owner, k)
        assert cr.text_to_image_recall(ranks.text_to_image, k) == pytest.approx(t2i, abs=1e-12)
        assert cr.image_to_text_recall(ranks.image_to_text, k) == pytest.approx(i2t, abs=1e-12)


def test_every_image_needs_a_caption() -> None:
    with pytest.raises(ValueError, match="no caption"):
        cr.caption_ranks(IMAGES, CAPTIONS[:3], OWNER[:3])


def test_caption_mean_bootstrap_resamples_images_with_their_captions() -> None:
    ranks = cr.caption_ranks(IMAGES, CAPTIONS, OWNER)
    counts = cr.captions_per_image(OWNER, 3)
    fractions = cr.hits_per_image(ranks.text_to_image, OWNER, 3, 1) / counts
    estimate = bootstrap_mean(fractions, 500, 0.95, 3, weights=counts)
    assert estimate.value == pytest.approx(3 / 7)  # the caption mean, not the image mean
    # resampling images keeps each image's hits and captions together: every resample's
    # recall is a ratio of sums of (1 of 3), (1 of 2), (1 of 2), so it lies in [1/3, 1/2]
    assert 1 / 3 <= estimate.ci_low < estimate.value < estimate.ci_high <= 1 / 2
    unweighted = bootstrap_mean(fractions, 500, 0.95, 3)
    assert unweighted.value == pytest.approx(4 / 9)


def test_weighted_paired_difference_is_the_difference_of_caption_means() -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 7, size=60)
    before = rng.binomial(counts, 0.6) / counts
    after = rng.binomial(counts, 0.4) / counts
    result = paired_bootstrap(before, after, 400, 0.95, 2, weights=counts)
    expected = (after * counts).sum() / counts.sum() - (before * counts).sum() / counts.sum()
    assert result.difference == pytest.approx(expected)
    assert result.ci_low <= result.difference <= result.ci_high
    same = paired_bootstrap(before, before, 400, 0.95, 2, weights=counts)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="weights"):
        paired_bootstrap(before, after, 10, 0.95, 2, weights=np.zeros(60))
