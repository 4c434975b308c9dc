"""Zero-shot metrics (SPEC §2) and attack metrics (SPEC §4), pinned on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliprobe.metrics.zeroshot import (
    AttackSuccess,
    attack_success_rate,
    build_classifier,
    class_indices,
    encode_text_fn,
    logits,
    mean_per_class_recall,
    probability_on_word,
    softmax,
    top_k_accuracy,
    top_k_predictions,
)

# --- classifier ----------------------------------------------------------------------------

FAKE_TEXT_EMBEDDINGS = {
    "a cat": [3.0, 4.0, 0.0],     # norm 5 -> (0.6, 0.8, 0)
    "the cat": [2.0, 0.0, 0.0],   # -> (1, 0, 0)
    "a dog": [0.0, 0.0, 7.0],     # -> (0, 0, 1)
    "the dog": [0.0, 0.0, 0.5],   # -> (0, 0, 1)
}


class FakeEncoder:
    """encode_text stand-in: a lookup table, recording every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([FAKE_TEXT_EMBEDDINGS[t] for t in texts], dtype=np.float32)


def test_build_classifier_normalises_averages_and_renormalises() -> None:
    encoder = FakeEncoder()
    weights = build_classifier(["cat", "dog"], ["a {}", "the {}"], encoder)
    assert encoder.calls == [["a cat", "the cat", "a dog", "the dog"]]  # one batched call
    assert weights.shape == (3, 2) and weights.dtype == np.float32
    # cat: mean((0.6, 0.8, 0), (1, 0, 0)) = (0.8, 0.4, 0), / sqrt(0.8)
    expected_cat = np.array([0.8, 0.4, 0.0]) / math.sqrt(0.8)
    np.testing.assert_allclose(weights[:, 0], expected_cat, atol=1e-7)
    np.testing.assert_allclose(weights[:, 1], [0.0, 0.0, 1.0], atol=1e-7)


def test_build_classifier_takes_per_class_texts() -> None:
    weights = build_classifier(
        ["dog", "cat"], {"cat": ["a cat"], "dog": ["the dog", "a dog"]}, FakeEncoder()
    )
    np.testing.assert_allclose(weights[:, 0], [0, 0, 1], atol=1e-7)
    np.testing.assert_allclose(weights[:, 1], [0.6, 0.8, 0], atol=1e-7)
    with pytest.raises(ValueError, match="no prompts for class 'cow'"):
        build_classifier(["cow"], {"cat": ["a cat"]}, FakeEncoder())
    with pytest.raises(ValueError, match="no prompts"):
        build_classifier(["cat"], [], FakeEncoder())


def test_logits_scale_normalised_images_by_100() -> None:
    classifier = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    images = np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(logits(images, classifier), [[60, 80], [0, 100]], rtol=1e-6)
    np.testing.assert_allclose(logits(images, classifier, scale=1.0), [[0.6, 0.8], [0, 1]],
                               rtol=1e-6)


def test_softmax_hand_values_and_stability() -> None:
    np.testing.assert_allclose(softmax(np.array([[0.0, math.log(3.0)]])), [[0.25, 0.75]])
    big = softmax(np.array([[1000.0, 1000.0, 1000.0 - math.log(2.0)]]))
    np.testing.assert_allclose(big, [[0.4, 0.4, 0.2]])
    assert np.isfinite(big).all()


# --- accuracy ------------------------------------------------------------------------------

# 4 images x 5 classes; each row's ranking written out below
LOGITS = np.array([
    [9, 1, 2, 3, 4],   # ranking 0 4 3 2 1
    [1, 9, 8, 0, 0],   # ranking 1 2 0 3 4 (tie 3/4 -> lower index first)
    [5, 6, 7, 8, 9],   # ranking 4 3 2 1 0
    [0, 0, 0, 1, 0],   # ranking 3 0 1 2 4
], dtype=np.float32)
TARGETS = np.array([0, 2, 1, 4])


def test_top_k_predictions_break_ties_towards_the_lower_index() -> None:
    assert top_k_predictions(LOGITS, 5).tolist() == [
        [0, 4, 3, 2, 1], [1, 2, 0, 3, 4], [4, 3, 2, 1, 0], [3, 0, 1, 2, 4]]


@pytest.mark.parametrize(("k", "expected"), [(1, 0.25), (2, 0.5), (3, 0.5), (4, 0.75), (5, 1.0)])
def test_top_k_accuracy_hand_computed(k: int, expected: float) -> None:
    # target ranks: image 0 -> 1st, image 1 -> 2nd, image 2 -> 4th, image 3 -> 5th
    assert top_k_accuracy(LOGITS, TARGETS, k) == expected


def test_top_k_accuracy_is_nan_with_fewer_classes_than_k() -> None:
    assert math.isnan(top_k_accuracy(LOGITS[:, :4], np.array([0, 2, 1, 3]), 5))
    assert top_k_accuracy(LOGITS[:, :4], np.array([0, 2, 1, 3]), 1) == 0.5
    assert math.isnan(top_k_accuracy(np.zeros((0, 5)), np.zeros(0, dtype=int), 1))
    with pytest.raises(ValueError, match="class indices"):
        top_k_accuracy(LOGITS, np.array([0, 1, 2, 5]), 1)


def test_mean_per_class_recall_hand_computed() -> None:
    targets = np.array([0, 0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 0])
    # recalls: class 0 3/4, class 1 1/2, class 2 0/1 -> mean 5/12; plain accuracy would be 4/7
    assert mean_per_class_recall(predictions, targets, 3) == pytest.approx(5 / 12)


def test_mean_per_class_recall_ignores_classes_absent_from_targets() -> None:
    # class 3 is predicted but never true; class 2 is never seen at all
    targets = np.array([0, 0, 1, 1])
    predictions = np.array([0, 3, 3, 1])
    assert mean_per_class_recall(predictions, targets, 4) == pytest.approx(0.5)
    assert math.isnan(mean_per_class_recall(np.zeros(0, int), np.zeros(0, int), 3))


def test_mean_per_class_recall_equals_scikit_learns_balanced_accuracy() -> None:
    """CLIP_benchmark reports sklearn's balanced_accuracy_score as mean_per_class_recall."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for trial in range(20):
        n_classes = int(rng.integers(2, 12))
        targets = rng.integers(0, n_classes, int(rng.integers(1, 60)))
        predictions = rng.integers(0, n_classes, len(targets))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
            expected = balanced_accuracy_score(targets, predictions)
        assert mean_per_class_recall(predictions, targets, n_classes) == pytest.approx(
            expected, abs=1e-12), trial


# --- attack metrics ------------------------------------------------------------------------

def test_attack_success_rate_excludes_and_counts_words_that_are_not_classes() -> None:
    predictions = np.array([2, 2, 0, 1, 3, 1])
    words = np.array([2, 1, -1, 1, -1, 0])  # hits: rows 0 and 3 of the 4 scored
    assert attack_success_rate(predictions, words) == AttackSuccess(0.5, 4, 2)
    none = attack_success_rate(np.array([1, 2]), np.array([-1, -1]))
    assert math.isnan(none.rate) and (none.n_scored, none.n_excluded) == (0, 2)


def test_probability_on_word_per_image() -> None:
    probabilities = np.array([[0.77, 0.23], [0.1, 0.9], [0.5, 0.5]])
    values = probability_on_word(probabilities, np.array([1, 1, -1]))
    np.testing.assert_allclose(values[:2], [0.23, 0.9])
    assert math.isnan(values[2])
    assert np.nanmean(values) == pytest.approx(0.565)
    with pytest.raises(ValueError, match="< C = 2"):
        probability_on_word(probabilities, np.array([2, 0, 0]))


def test_class_indices_maps_unknown_and_missing_words_to_minus_one() -> None:
    assert class_indices(["dog", None, "$$$", "cat"], ["cat", "dog"]).tolist() == [1, -1, -1, 0]


def test_end_to_end_egg_vs_cat() -> None:
    """Seed 000's two-class setup: probabilities of 'egg' vs 'cat' from embeddings."""
    classifier = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # egg, cat
    images = np.array([[0.999, 0.045], [0.6, 0.8]], dtype=np.float32)
    probabilities = softmax(logits(images, classifier))
    assert probabilities[0, 0] > 0.99 and probabilities[1, 1] > 0.99
    predictions = probabilities.argmax(axis=1)
    assert attack_success_rate(predictions, np.array([1, 1])).rate == 0.5


# --- text encoding -------------------------------------------------------------------------

def test_encode_text_fn_is_normalised_and_batch_size_invariant(smoke_model) -> None:
    texts = ["a photo of a cat.", "a photo of a dog.", "an egg", "CAT"]
    small = encode_text_fn(smoke_model, batch_size=3)(texts)
    large = encode_text_fn(smoke_model, batch_size=64)(texts)
    assert small.shape == (4, smoke_model.embed_dim) and small.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(small, large, atol=1e-5)
    assert not np.allclose(small[0], small[1])
    assert encode_text_fn(smoke_model)([]).shape == (0, smoke_model.embed_dim)
    weights = build_classifier(["cat", "dog"], ["a photo of a {}."], encode_text_fn(smoke_model))
    np.testing.assert_allclose(weights[:, 0], small[0], atol=1e-5)


def test_two_way_word_probability() -> None:
    from cliprobe.metrics.zeroshot import two_way_word_probability

    scores = np.array([[2.0, 0.0, 2.0 + math.log(3.0)], [1.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    out = two_way_word_probability(scores, np.array([0, 1, 2]), np.array([2, -1, 2]))
    assert out[0] == pytest.approx(0.75)  # e^(l+log 3) / (e^l + e^(l+log 3)) = 3/4
    assert np.isnan(out[1]) and np.isnan(out[2])  # word not a class; word = true class


def test_logits_use_the_given_scale_and_bias() -> None:
    from cliprobe.metrics.zeroshot import logits

    out = logits(np.array([[3.0, 4.0]]), np.eye(2, dtype=np.float32), 10.0, bias=-1.0)
    np.testing.assert_allclose(out, [[5.0, 7.0]], rtol=1e-6)
