"""Revisited Oxford / Paris mAP of a cell, on a hand-computed toy dataset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.retrieval import revisited_scores


def test_easy_medium_hard_map() -> None:
    ids = ["g0", "g1", "g2", "g3", "q0", "q1"]
    g1 = np.array([0.9, 0.1, 0, 0]) / np.linalg.norm([0.9, 0.1])
    vectors = np.array([[1, 0, 0, 0], g1, [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0],
                        [0, 0, 1, 0]], dtype=np.float32)
    table = EmbeddingTable(np.array(ids, dtype=object), np.array(["x"] * 6, dtype=object),
                           np.zeros(6, dtype=np.int64), vectors, {},
                           np.array([""] * 6, dtype=object))
    manifest = pd.DataFrame({
        "image_id": ids,
        "gnd_easy": [None] * 4 + [json.dumps(["g0"]), json.dumps(["g2"])],
        "gnd_hard": [None] * 4 + [json.dumps(["g1"]), json.dumps([])],
        "gnd_junk": [None] * 4 + [json.dumps(["g2"]), json.dumps([])],
    })
    metrics, facts = revisited_scores(table, table, manifest, Estimator(0, "c", 100, 0.95))
    # q0 ranks g0, g1 first: AP 1 under every protocol. q1 ranks g3, g0, g1, then its only
    # (easy) positive g2 at 0-based position 3: revisitop's AP = (0/3 + 1/4) / 2 = 0.125;
    # q1 has no hard positive, so Hard is q0 alone.
    assert metrics["revisited_map_easy"]["value"] == pytest.approx((1 + 0.125) / 2)
    assert metrics["revisited_map_medium"]["value"] == pytest.approx((1 + 0.125) / 2)
    assert metrics["revisited_map_hard"]["value"] == pytest.approx(1.0)
    assert facts["revisited"]["queries"] == 2 and facts["revisited"]["gallery"] == 4


def test_datasets_without_ground_truth_get_nothing() -> None:
    table = EmbeddingTable(np.array(["a"], dtype=object), np.array(["x"], dtype=object),
                           np.zeros(1, dtype=np.int64), np.ones((1, 2), np.float32), {},
                           np.array([""], dtype=object))
    assert revisited_scores(table, table, pd.DataFrame({"image_id": ["a"]}),
                            Estimator(0, "c", 10, 0.95)) == ({}, {})
