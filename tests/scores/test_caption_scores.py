"""Image <-> text scores of a cell, on the hand-computed case of
tests/metrics/test_caption_retrieval.py, with one image skipped by the manipulation."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.io.caption_embeddings import CaptionEmbeddings
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.captions import caption_scores, per_image_caption_values
from cliprobe.scores.estimates import Estimator
from metrics.test_caption_retrieval import CAPTIONS, IMAGES, OWNER


def _cell(vectors: np.ndarray, ids: list[str]) -> EmbeddingTable:
    n = len(ids)
    return EmbeddingTable(image_ids=np.asarray(ids, dtype=object),
                          labels=np.asarray([""] * n, dtype=object),
                          class_indices=np.zeros(n, dtype=np.int64), vectors=vectors,
                          metadata={}, infos=np.asarray([""] * n, dtype=object))


def _captions(owner: np.ndarray) -> CaptionEmbeddings:
    ids = [f"img{i}" for i in owner]
    return CaptionEmbeddings(caption_ids=np.asarray([f"{i}#{n}" for n, i in enumerate(ids)],
                                                    dtype=object),
                             image_ids=np.asarray(ids, dtype=object), vectors=CAPTIONS,
                             metadata={})


def test_cell_scores_match_the_hand_computed_recalls() -> None:
    cell = _cell(IMAGES, ["img0", "img1", "img2"])
    metrics, per_image, facts = caption_scores(cell, np.arange(3), _captions(OWNER), [1, 2, 3],
                                               Estimator(0, "m/d/x", 300, 0.95))
    assert metrics["text_to_image_recall_at_1"]["value"] == pytest.approx(3 / 7)
    assert metrics["text_to_image_recall_at_2"]["value"] == pytest.approx(5 / 7)
    assert metrics["image_to_text_recall_at_1"]["value"] == pytest.approx(1 / 3)
    assert metrics["image_to_text_recall_at_2"]["value"] == pytest.approx(2 / 3)
    assert metrics["text_to_image_recall_at_1"]["n"] == 3  # images, each with its captions
    assert per_image["caption_ranks"].tolist() == [[0, 1, 2], [0, 1], [0, 2]]
    assert per_image["best_caption_rank"].tolist() == [0, 1, 2]
    assert per_image["n_captions"].tolist() == [3, 2, 2]
    values, weights = per_image_caption_values(per_image, "text_to_image_recall_at_1")
    assert (values * weights).sum() / weights.sum() == pytest.approx(3 / 7)
    assert facts["n_captions"] == 7 and facts["captions_of_skipped_images"] == 0


def test_captions_of_a_skipped_image_are_left_out_and_counted() -> None:
    # the manipulation failed on img0: the cell holds img1 and img2 only
    cell = _cell(IMAGES[1:], ["img1", "img2"])
    metrics, per_image, facts = caption_scores(cell, np.arange(2), _captions(OWNER), [1],
                                               Estimator(0, "m/d/x", 100, 0.95))
    assert facts["captions_of_skipped_images"] == 3 and facts["n_captions"] == 4
    assert per_image["n_captions"].tolist() == [2, 2]
    # among images 1 and 2 only: captions 120 and 230 find their image first; 170 does not
    # (image 2 at 10 deg beats image 1 at 80), and 50 is closer to image 1 than to image 2
    assert metrics["text_to_image_recall_at_1"]["value"] == pytest.approx(2 / 4)
