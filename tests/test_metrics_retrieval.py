"""Retrieval metrics on hand-computed cases (SPEC §3)."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.metrics import retrieval as rm


def test_seed001_accuracy_counts_neighbours_closer_than_threshold_to_clean_query() -> None:
    clean = np.array([[1.0, 0.0]])
    # distances to clean: 0, sqrt(2)=1.414, 0.5, 0.8 (not strictly below t)
    neighbours = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [1.0, 0.8]]])
    assert rm.seed001_query_accuracy(neighbours, clean, 0.8)[0] == pytest.approx(0.5)


def test_dataset_score_is_mean_of_class_means() -> None:
    values = np.array([1.0, 1.0, 1.0, 0.0])
    labels = np.array(["a", "a", "a", "b"])
    # image mean would be 0.75; seed 001 weights classes equally -> 0.5
    assert rm.mean_of_class_means(values, labels) == pytest.approx(0.5)
    assert rm.class_means(values, labels).to_dict() == {"a": 1.0, "b": 0.0}


def test_own_rank_and_recall() -> None:
    neighbours = np.array([[3, 0, 1], [2, 1, 0], [0, 1, 2]])
    own = np.array([0, 5, 0])
    ranks = rm.own_image_rank(neighbours, own)
    assert ranks.tolist() == [1, -1, 0]
    assert rm.recall_at_k(ranks, 1).tolist() == [0.0, 0.0, 1.0]
    assert rm.recall_at_k(ranks, 2).tolist() == [1.0, 0.0, 1.0]


def test_same_class_rank_skips_the_query_own_image() -> None:
    gallery_labels = np.array(["cat", "cat", "dog", "dog"])
    neighbours = np.array([[0, 2, 1], [3, 2, 0]])
    own = np.array([0, 3])
    query_labels = np.array(["cat", "dog"])
    ranks = rm.first_same_class_rank(neighbours, own, gallery_labels, query_labels)
    # query 0: own image 0 removed -> [2 (dog), 1 (cat)] -> rank 1
    # query 1: own image 3 removed -> [2 (dog)] -> rank 0
    assert ranks.tolist() == [1, 0]


def test_cosine_drift_of_unit_vectors() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    np.testing.assert_allclose(rm.cosine_drift(a, b), [1.0, np.sqrt(0.5)])


def test_seed001_neighbours_leave_the_own_image_out() -> None:
    from cliprobe.metrics.retrieval import seed001_neighbours

    ranking = np.array([[3, 0, 1], [2, 1, 0], [4, 5, 6]])
    own = np.array([0, 2, 9])  # the third query never retrieved its own image
    np.testing.assert_array_equal(seed001_neighbours(ranking, own, 2), [[3, 1], [1, 0], [4, 5]])
    np.testing.assert_array_equal(seed001_neighbours(ranking, own, 2, leave_one_out=False),
                                  [[3, 0], [2, 1], [4, 5]])
    with pytest.raises(ValueError, match="needs 4 ranked neighbours"):
        seed001_neighbours(ranking, own, 3)
