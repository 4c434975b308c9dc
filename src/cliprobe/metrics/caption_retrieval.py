"""Image <-> text retrieval recalls, as CLIP_benchmark computes them.

Pure functions over arrays. The definitions are those of LAION's CLIP_benchmark
(``clip_benchmark/metrics/zeroshot_retrieval.py``), whose numbers the CLIP papers report:

- scores are the inner products of L2-normalised caption and image embeddings;
- **text -> image recall@k** (CLIP_benchmark's ``image_retrieval_recall@k``): the fraction of
  *captions* whose own image is among the k images scoring highest for that caption;
- **image -> text recall@k** (``text_retrieval_recall@k``): the fraction of *images* with at
  least one of their own captions among the k captions scoring highest for that image.

Both are computed from ranks, so any k comes from one pass: the 0-based rank of a caption's
image among all images (text -> image), and the rank of an image's *best-placed* own caption
among all captions (image -> text; "at least one in the top k" is "the best one is"). A rank is
the number of candidates scoring strictly higher, so a tie counts in the positive's favour
(with float embeddings exact ties need identical images or identical caption texts).

Scores are float32 matrix products in blocks (memory O(block x other side), never
captions x images at once); the positive pair's score is read from the same block, so float
rounding can never rank a positive below itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptionRanks:
    """Ranks of one image <-> text retrieval run.

    ``text_to_image``: ``(C,)`` int64, per caption, the 0-based rank of its image among the
    images. ``image_to_text``: ``(I,)`` int64, per image, the 0-based rank of its best-placed
    own caption among all captions.
    """

    text_to_image: np.ndarray
    image_to_text: np.ndarray


def captions_per_image(caption_image: np.ndarray, n_images: int) -> np.ndarray:
    """``(I,)`` int64: how many captions each image has."""
    return np.bincount(np.asarray(caption_image, dtype=np.int64), minlength=n_images)


def caption_ranks(
    image_vectors: np.ndarray,
    text_vectors: np.ndarray,
    caption_image: np.ndarray,
    block: int = 1024,
) -> CaptionRanks:
    """Text -> image and image -> text ranks.

    ``image_vectors`` ``(I, D)`` and ``text_vectors`` ``(C, D)`` are L2-normalised;
    ``caption_image`` ``(C,)`` gives each caption's image as a row index into
    ``image_vectors``. Every image needs at least one caption (``ValueError`` otherwise).
    """
    images = np.asarray(image_vectors, dtype=np.float32)
    texts = np.asarray(text_vectors, dtype=np.float32)
    owner = np.asarray(caption_image, dtype=np.int64)
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(f"need (I, D) images and (C, D) texts, got {images.shape} and "
                         f"{texts.shape}")
    if owner.shape != (len(texts),):
        raise ValueError(f"caption_image has shape {owner.shape}, expected ({len(texts)},)")
    if len(owner) and (owner.min() < 0 or owner.max() >= len(images)):
        raise ValueError("caption_image holds an index outside the images")
    counts = captions_per_image(owner, len(images))
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} image(s) have no caption; every image "
                         "needs at least one")

    text_to_image = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), block):
        scores = texts[start:start + block] @ images.T
        positive = scores[np.arange(len(scores)), owner[start:start + block]]
        text_to_image[start:start + block] = (scores > positive[:, None]).sum(axis=1)

    # captions of each image, as (image, caption) pairs sorted by image
    order = np.argsort(owner, kind="stable")
    first = np.concatenate([[0], np.cumsum(counts)])
    image_to_text = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(images), block):
        stop = min(start + block, len(images))
        scores = images[start:stop] @ texts.T
        pairs = order[first[start]:first[stop]]
        rows = owner[pairs] - start
        best = np.full(stop - start, -np.inf, dtype=np.float32)
        np.maximum.at(best, rows, scores[rows, pairs])
        image_to_text[start:stop] = (scores > best[:, None]).sum(axis=1)
    return CaptionRanks(text_to_image, image_to_text)


def hits_per_image(
    text_to_image: np.ndarray, caption_image: np.ndarray, n_images: int, k: int
) -> np.ndarray:
    """``(I,)`` int64: per image, how many of its captions retrieve it within the top k."""
    hit = np.asarray(text_to_image) < k
    return np.bincount(np.asarray(caption_image, dtype=np.int64)[hit], minlength=n_images)


def text_to_image_recall(text_to_image: np.ndarray, k: int) -> float:
    """Fraction of captions whose image is in their top k (NaN without captions)."""
    ranks = np.asarray(text_to_image)
    return float((ranks < k).mean()) if ranks.size else float("nan")


def image_to_text_recall(image_to_text: np.ndarray, k: int) -> float:
    """Fraction of images with at least one own caption in their top k (NaN without images)."""
    ranks = np.asarray(image_to_text)
    return float((ranks < k).mean()) if ranks.size else float("nan")
