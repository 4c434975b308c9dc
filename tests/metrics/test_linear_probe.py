"""Seed 002's linear probe: seeded split, C by cross-validation, evaluation on other embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from cliprobe.errors import DataError
from cliprobe.metrics.linear_probe import DEFAULT_C_GRID, evaluate_probe, fit_linear_probe

NAMES = np.array(["egg", "cat", "dog"])


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """3 well-separated classes x 40 points in 16-D, unit-normalised like CLIP embeddings."""
    points, classes = make_blobs(n_samples=120, n_features=16, centers=3, cluster_std=1.0,
                                 random_state=0)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), NAMES[classes]


def test_separable_blobs_give_a_high_test_accuracy(blobs) -> None:
    embeddings, labels = blobs
    result = fit_linear_probe(embeddings, labels, test_fraction=0.25, seed=0, cv_folds=3)
    assert result.test_accuracy >= 0.95 and result.train_accuracy >= 0.95
    assert result.C in DEFAULT_C_GRID and set(result.cv_accuracy) == set(DEFAULT_C_GRID)
    assert result.cv_accuracy[result.C] == max(result.cv_accuracy.values())
    assert sorted(result.model.classes_) == sorted(NAMES)


def test_split_is_stratified_disjoint_and_complete(blobs) -> None:
    embeddings, labels = blobs
    result = fit_linear_probe(embeddings, labels, test_fraction=0.25, seed=3, cv_folds=3)
    train, test = result.train_index, result.test_index
    assert len(np.intersect1d(train, test)) == 0
    assert sorted(np.concatenate([train, test])) == list(range(len(labels)))
    assert {name: int((labels[test] == name).sum()) for name in NAMES} == dict.fromkeys(NAMES, 10)


def test_same_seed_same_probe_other_seed_other_split(blobs) -> None:
    embeddings, labels = blobs
    first = fit_linear_probe(embeddings, labels, seed=7, cv_folds=3)
    again = fit_linear_probe(embeddings, labels, seed=7, cv_folds=3)
    assert first.C == again.C and first.cv_accuracy == again.cv_accuracy
    assert np.array_equal(first.test_index, again.test_index)
    assert np.array_equal(first.model.coef_, again.model.coef_)
    assert (first.train_accuracy, first.test_accuracy) == (
        again.train_accuracy, again.test_accuracy)
    other = fit_linear_probe(embeddings, labels, seed=8, cv_folds=3)
    assert not np.array_equal(first.test_index, other.test_index)


def test_evaluate_probe_on_clean_and_manipulated_embeddings(blobs) -> None:
    embeddings, labels = blobs
    result = fit_linear_probe(embeddings, labels, seed=0, cv_folds=3)
    test = result.test_index
    clean = evaluate_probe(result.model, embeddings[test], labels[test])
    assert clean.accuracy == result.test_accuracy
    assert clean.predictions.shape == (len(test),)
    # a "manipulation" that moves every image onto the egg class's mean
    egg_mean = embeddings[labels == "egg"].mean(axis=0)
    shifted = evaluate_probe(result.model, np.tile(egg_mean, (len(test), 1)), labels[test])
    assert shifted.accuracy == pytest.approx(np.mean(labels[test] == "egg"))
    unseen = evaluate_probe(result.model, embeddings[test][:4], np.array(["cow"] * 4))
    assert unseen.accuracy == 0.0
    assert math.isnan(evaluate_probe(result.model, embeddings[:0], labels[:0]).accuracy)


def test_too_few_images_per_class_is_a_data_error() -> None:
    embeddings = np.eye(4, dtype=np.float32)
    with pytest.raises(DataError, match="stratified"):
        fit_linear_probe(embeddings, np.array(["a", "a", "a", "b"]))
    with pytest.raises(DataError, match="two classes"):
        fit_linear_probe(embeddings, np.array(["a"] * 4))
    with pytest.raises(DataError, match="2 training images per class"):
        fit_linear_probe(np.eye(6, dtype=np.float32), np.array(["a", "a", "a", "b", "b", "b"]),
                         test_fraction=0.5)


# --- the literature protocol -------------------------------------------------------------------


def _blobs(n_per_class: int, seed: int, spread: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(4, 8) * 2.0
    features = np.concatenate([c + spread * rng.normal(size=(n_per_class, 8)) for c in centres])
    labels = np.repeat([f"c{k}" for k in range(4)], n_per_class)
    return features, labels


def test_literature_probe_searches_lambda_like_the_clip_paper() -> None:
    from sklearn.linear_model import LogisticRegression

    from cliprobe.metrics.linear_probe import fit_literature_probe

    train, validation = _blobs(30, 0), _blobs(15, 1)
    result = fit_literature_probe(*train, *validation)
    tried_log_lambda = sorted(round(-np.log10(c), 6) for c in result.validation_accuracy)
    # the 7 starting points, 10^-6 ... 10^6, are all tried
    assert {-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0} <= set(tried_log_lambda)
    # the search halves around the best down to 8 steps per decade: 7 + 2 per halving (4)
    assert len(tried_log_lambda) <= 7 + 2 * 4
    chosen = -np.log10(result.C)
    assert abs(chosen * 8 - round(chosen * 8)) < 1e-6
    best = max(result.validation_accuracy.values())
    assert result.validation_accuracy[min(result.validation_accuracy,
                                          key=lambda c: abs(c - result.C))] == best
    # refitted on train + validation with the chosen C
    refit = LogisticRegression(C=result.C, max_iter=1000).fit(
        np.concatenate([train[0], validation[0]]), np.concatenate([train[1], validation[1]]))
    np.testing.assert_allclose(result.model.coef_, refit.coef_)
    assert (result.n_train, result.n_validation) == (120, 60)
    again = fit_literature_probe(*train, *validation)
    assert again.C == result.C  # deterministic


def test_validation_split_is_seeded_and_stratified() -> None:
    from cliprobe.metrics.linear_probe import validation_split

    labels = [*np.repeat(["a", "b", "c"], 10).tolist(), "lonely"]
    train, held_out = validation_split(labels, 0.2, seed=3)
    assert len(held_out) == 6 and 30 in train  # two per class; the single image stays
    assert sorted(np.asarray(labels)[held_out]) == ["a", "a", "b", "b", "c", "c"]
    np.testing.assert_array_equal(validation_split(labels, 0.2, seed=3)[1], held_out)
