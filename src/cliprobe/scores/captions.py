"""Image <-> text retrieval scores of one cell: the cell's (manipulated) images against the
dataset's clean captions, encoded once per model (the captions stage).

Recalls as CLIP_benchmark computes them (:mod:`cliprobe.metrics.caption_retrieval`), each with
a bootstrap interval that resamples images with their captions kept together. Per image the
cell stores its captions' text -> image ranks (``caption_ranks``, a list), their count
(``n_captions``) and the rank of its best-placed own caption (``best_caption_rank``), so the
aggregate stage pairs cells image by image and can recompute any k.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from cliprobe.io.caption_embeddings import CaptionEmbeddings
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics import caption_retrieval as cr
from cliprobe.scores.estimates import Estimator

#: Metric names: text -> image recall (a fraction of captions), image -> text (of images).
TEXT_TO_IMAGE = "text_to_image_recall_at_{k}"
IMAGE_TO_TEXT = "image_to_text_recall_at_{k}"
CAPTION_METRIC = re.compile(r"^(text_to_image|image_to_text)_recall_at_(\d+)$")
PROTOCOL = ("CLIP_benchmark zeroshot_retrieval: text->image recall@k = fraction of captions "
            "whose image is in their top k images (CLIP_benchmark's image_retrieval_recall@k); "
            "image->text recall@k = fraction of images with at least one own caption in their "
            "top k captions (text_retrieval_recall@k); cosine scores, ties counted in the "
            "positive's favour")


def per_image_caption_values(frame: pd.DataFrame, metric: str
                             ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Per-image values (and weights) whose (weighted) mean is a caption metric.

    Text -> image: the fraction of the image's captions that hit, weighted by its number of
    captions (the caption mean). Image -> text: 0/1 per image, unweighted. NaN for images
    without captions. None when ``metric`` is not a caption metric or the columns are absent.
    """
    match = CAPTION_METRIC.match(metric)
    if match is None or "best_caption_rank" not in frame:
        return None
    k = int(match[2])
    counts = frame["n_captions"].to_numpy(dtype=np.float64)
    if match[1] == "image_to_text":
        best = frame["best_caption_rank"].to_numpy()
        return np.where(counts > 0, (best >= 0) & (best < k), np.nan).astype(np.float64), None
    hits = np.array([np.count_nonzero(np.asarray(ranks) < k) for ranks in frame["caption_ranks"]],
                    dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(counts > 0, hits / counts, np.nan)
    return fractions, np.where(counts > 0, counts, np.nan)


def caption_scores(
    queries: EmbeddingTable,
    rows: np.ndarray,
    captions: CaptionEmbeddings,
    recall_k: list[int],
    estimate: Estimator,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """(metrics, per-image columns aligned with ``rows``, facts) of image <-> text retrieval.

    The images are the cell's ``queries.vectors[rows]``; captions of images not among them
    (skipped) are left out and counted.
    """
    image_ids = [str(i) for i in queries.image_ids[rows]]
    position = {image_id: n for n, image_id in enumerate(image_ids)}
    owner_all = np.array([position.get(str(i), -1) for i in captions.image_ids], dtype=np.int64)
    kept = owner_all >= 0
    counts = cr.captions_per_image(owner_all[kept], len(image_ids))
    with_captions = np.flatnonzero(counts > 0)
    # caption_ranks needs every image to have a caption: rank among the captioned images
    renumber = np.full(len(image_ids), -1, dtype=np.int64)
    renumber[with_captions] = np.arange(len(with_captions))
    owner = renumber[owner_all[kept]]
    ranks = cr.caption_ranks(queries.vectors[rows][with_captions], captions.vectors[kept], owner)

    caption_ranks: list[list[int]] = [[] for _ in image_ids]
    for caption, rank in zip(owner_all[kept], ranks.text_to_image, strict=True):
        caption_ranks[caption].append(int(rank))
    best = np.full(len(image_ids), -1, dtype=np.int64)
    best[with_captions] = ranks.image_to_text
    per_image = pd.DataFrame({"n_captions": counts.astype(np.int64),
                              "caption_ranks": caption_ranks,
                              "best_caption_rank": best})
    metrics: dict[str, Any] = {}
    for k in recall_k:
        name = TEXT_TO_IMAGE.format(k=k)
        values, weights = per_image_caption_values(per_image, name)  # type: ignore[misc]
        metrics[name] = estimate(name, values, weights=weights)
    for k in recall_k:
        name = IMAGE_TO_TEXT.format(k=k)
        values, _ = per_image_caption_values(per_image, name)  # type: ignore[misc]
        metrics[name] = estimate(name, values)
    facts = {"protocol": PROTOCOL, "n_captions": int(kept.sum()),
             "n_images": len(with_captions),
             "captions_of_skipped_images": int((~kept).sum()),
             "text_side": "the dataset's clean captions (captions stage), never manipulated",
             "resampled": "images, each with its captions"}
    return metrics, per_image, facts
