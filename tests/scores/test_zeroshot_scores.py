"""Zero-shot and attack scores of a cell, and the stored linear probe, on hand-built tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliprobe.io.classifier import Classifier
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores import probe
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.zeroshot import word_search_scores, zeroshot_scores
from cliprobe.stages.classifier import classifier_classes

CLASSES = ["apple", "dog", "ipod"]


def _table(vectors: np.ndarray, labels: list[str], infos: list[dict]) -> EmbeddingTable:
    return EmbeddingTable(
        image_ids=np.asarray([f"img{i}" for i in range(len(labels))], dtype=object),
        labels=np.asarray(labels, dtype=object),
        class_indices=np.zeros(len(labels), dtype=np.int64),
        vectors=vectors.astype(np.float32),
        metadata={},
        infos=np.asarray([json.dumps(i) if i else "" for i in infos], dtype=object),
    )


def _estimator() -> Estimator:
    return Estimator(0, "m/d/x", 200, 0.95)


def test_accuracy_attack_success_and_word_probability() -> None:
    # classifier: one-hot class axes, so an image's vector picks its predicted class
    classifier = Classifier(CLASSES, np.eye(3, dtype=np.float32), {})
    vectors = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    labels = ["apple", "apple", "dog", "apple"]
    infos = [{}, {"word_label": "ipod"}, {"word_label": "ipod"}, {"word_label": "apple"}]
    queries = _table(vectors, labels, infos)
    metrics, per_image, probabilities, by_condition = zeroshot_scores(
        queries, np.arange(4), classifier, pd.DataFrame({"image_id": []}), _estimator())
    # predictions: apple, ipod, ipod, apple -> correct: 1, 0, 0, 1
    assert metrics["zeroshot_acc1"]["value"] == pytest.approx(0.5)
    assert metrics["zeroshot_acc5"]["value"] is None  # fewer than 5 classes
    # per-class recall: apple 2/3, dog 0 -> 1/3
    assert metrics["zeroshot_mean_per_class_recall"]["value"] == pytest.approx(1 / 3)
    # attacked rows: 1 and 2 (row 3's word is its own class), both predicted ipod
    assert metrics["attack_success_rate"]["value"] == pytest.approx(1.0)
    assert metrics["attack_success_rate"]["n"] == 2
    assert metrics["attacked_true_class_acc1"]["value"] == pytest.approx(0.0)
    expected_p = np.exp(100) / (np.exp(100) + 2)
    assert metrics["word_probability"]["value"] == pytest.approx(expected_p)
    assert per_image["written_word"].tolist() == ["", "ipod", "ipod", "apple"]
    assert np.isnan(per_image["attack_success"][0]) and np.isnan(per_image["attack_success"][3])
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert by_condition == {}


def test_words_and_conditions_from_a_typographic_dataset() -> None:
    classifier = Classifier(CLASSES, np.eye(3, dtype=np.float32), {})
    vectors = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    queries = _table(vectors, ["apple", "apple", "apple"], [{}, {}, {}])
    manifest = pd.DataFrame({"image_id": ["img0", "img1", "img2"],
                             "word_label": [None, "dog", "apple"],
                             "condition": ["clean", "typographic_attack", "matching_text"]})
    metrics, _, _, by_condition = zeroshot_scores(queries, np.arange(3), classifier, manifest,
                                                  _estimator())
    assert metrics["attack_success_rate"]["value"] == pytest.approx(1.0)
    assert set(by_condition) == {"clean", "matching_text", "typographic_attack"}
    assert by_condition["clean"]["zeroshot_acc1"]["value"] == pytest.approx(1.0)
    assert by_condition["typographic_attack"]["attack_success_rate"]["value"] == 1.0
    assert "attack_success_rate" not in by_condition["matching_text"]


def test_classifier_classes_extend_with_words_then_extras(tmp_path: Path) -> None:
    from cliprobe.config.compose import compose_params
    from cliprobe.config.loading import validate_params

    conf = Path(__file__).resolve().parents[2] / "conf"
    params = validate_params(compose_params(conf, ["model=smoke",
                                                   "zeroshot.extra_classes=[egg,cat]"]))
    assert classifier_classes(["apple", "dog"], ["ipod", "dog", ""], params) == [
        "apple", "dog", "ipod", "egg", "cat"]
    off = validate_params(compose_params(conf, ["model=smoke", "zeroshot.extend_with_words=false"]))
    assert classifier_classes(["apple", "dog"], ["ipod"], off) == ["apple", "dog"]
    # a caption dataset: no class, its vocabulary (in the manifest's info) stands in
    from cliprobe.datasets.manifest import class_vocabulary

    manifest = pd.DataFrame({"label": ["dog", "apple", "dog"]})
    assert class_vocabulary(manifest, {"words": ["bus"]}) == ["apple", "dog"]
    captioned = pd.DataFrame({"label": ["", ""]})
    assert class_vocabulary(captioned, {"words": ["pizza", "bus"]}) == ["pizza", "bus"]
    assert classifier_classes(["pizza", "bus"], [], params) == ["pizza", "bus", "egg", "cat"]


def test_probe_is_stored_as_arrays_and_evaluated_on_held_out_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8) * 4
    labels = [f"c{i % 4}" for i in range(80)]
    vectors = np.stack([centres[i % 4] + rng.normal(size=8) * 0.3 for i in range(80)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gallery = _table(vectors, labels, [{}] * 80)
    info = probe.fit_and_save(gallery, 0, 0.25, tmp_path / "probe.npz", _estimator())
    assert info["test"]["value"] == pytest.approx(1.0) and info["train_accuracy"] == 1.0
    with np.load(tmp_path / "probe.npz", allow_pickle=False) as stored:
        assert set(stored.files) == {"coef", "intercept", "classes", "test_ids"}
        held_out = set(stored["test_ids"].tolist())
    assert len(held_out) == 20
    # a manipulation that swaps two classes' directions fools the probe on those classes
    swapped = vectors[:, [1, 0, 2, 3, 4, 5, 6, 7]]
    result = probe.evaluate_saved(tmp_path / "probe.npz", _table(swapped, labels, [{}] * 80),
                                  _estimator())
    assert result is not None and result["n"] == 20
    assert result["value"] == pytest.approx(0.5)


def test_probe_that_cannot_be_fitted_leaves_an_empty_file(tmp_path: Path) -> None:
    gallery = _table(np.eye(3, 4), ["a", "b", "c"], [{}] * 3)
    info = probe.fit_and_save(gallery, 0, 0.25, tmp_path / "probe.npz", _estimator())
    assert "skipped" in info and (tmp_path / "probe.npz").is_file()
    assert probe.evaluate_saved(tmp_path / "probe.npz", gallery, _estimator()) is None


def test_images_without_a_class_get_attack_metrics_but_no_accuracy() -> None:
    """A caption dataset: labels are "", the classifier's classes are its vocabulary."""
    classifier = Classifier(CLASSES, np.eye(3, dtype=np.float32), {})
    vectors = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    queries = _table(vectors, ["", "", ""], [{"word_label": "ipod"}, {"word_label": "dog"}, {}])
    metrics, per_image, _, _ = zeroshot_scores(queries, np.arange(3), classifier,
                                               pd.DataFrame({"image_id": []}), _estimator())
    # no true class: seed 000's two-way object-vs-word probability is undefined, only the
    # word's share over all classes remains
    assert set(metrics) == {"attack_success_rate", "word_probability_all_classes"}
    assert metrics["attack_success_rate"]["value"] == pytest.approx(0.5)  # ipod yes, dog no
    assert per_image["zeroshot_correct"].isna().all() and per_image["p_true"].isna().all()


def test_word_search_compares_the_attacked_image_with_its_clean_self() -> None:
    # word query of "dog" points along axis 1; of "ipod" along axis 2
    queries_of_words = np.eye(3, dtype=np.float32)
    classifier = Classifier(CLASSES, np.eye(3, dtype=np.float32), {}, queries_of_words)
    clean = np.array([[0.8, 0.6, 0.0], [0.8, 0.6, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    attacked = np.array([[0.6, 0.8, 0.0],    # "dog" written: dog query 0.8 > 0.6 -> above
                         [0.6, 0.0, 0.8],    # "dog" written: dog query 0.0 < 0.6 -> not
                         [0.0, 0.0, 1.0],    # "ipod" written: 1.0 > 0.0 -> above
                         [0.0, 0.0, 1.0]])   # nothing written -> not scored
    queries = _table(attacked, ["a"] * 4, [{"word_label": "dog"}, {"word_label": "dog"},
                                           {"word_label": "ipod"}, {}])
    metrics, columns = word_search_scores(queries, np.arange(4), clean, classifier,
                                          _estimator())
    assert metrics["word_search_above_clean"]["value"] == pytest.approx(2 / 3)
    assert metrics["word_search_above_clean"]["n"] == 3
    assert columns["word_search_above_clean"].tolist()[:3] == [1.0, 0.0, 1.0]
    assert np.isnan(columns["word_search_above_clean"][3])
    np.testing.assert_allclose(columns["word_search_gain"][:3], [0.2, -0.6, 1.0], atol=1e-6)
    # a classifier file without word queries (older runs): nothing is claimed
    old = Classifier(CLASSES, np.eye(3, dtype=np.float32), {})
    assert word_search_scores(queries, np.arange(4), clean, old, _estimator())[0] == {}


def test_probabilities_use_the_models_logit_scale_and_word_probability_is_two_way() -> None:
    """Logit scale 2 (recorded with the classifier); an apple photo with 'ipod' written on it,
    cosines apple 0.6, dog 0, ipod 0.8 -> logits 1.2, 0, 1.6.

    all classes: p(ipod) = e^1.6 / (e^1.2 + e^0 + e^1.6) = 4.953032 / 9.273149 = 0.534126
    two-way (seed 000, apple vs ipod): e^1.6 / (e^1.2 + e^1.6) = 4.953032 / 8.273149 = 0.598688
    At the old fixed scale 100 both would be 1.0000.
    """
    classifier = Classifier(CLASSES, np.eye(3, dtype=np.float32),
                            {"logit_scale": 2.0, "logit_bias": None})
    queries = _table(np.array([[0.6, 0.0, 0.8]]), ["apple"], [{"word_label": "ipod"}])
    metrics, per_image, probabilities, _ = zeroshot_scores(
        queries, np.arange(1), classifier, pd.DataFrame({"image_id": []}), _estimator())
    np.testing.assert_allclose(probabilities[0], [3.320117 / 9.273149, 1 / 9.273149,
                                                  4.953032 / 9.273149], rtol=1e-5)
    assert metrics["word_probability_all_classes"]["value"] == pytest.approx(0.534126, abs=1e-6)
    assert metrics["word_probability"]["value"] == pytest.approx(0.598688, abs=1e-6)
    assert per_image["p_word"][0] == pytest.approx(0.598688, abs=1e-6)
    assert metrics["attack_success_rate"]["value"] == 1.0  # accuracy: unchanged by the scale
    # a SigLIP-style bias shifts every logit alike: softmax probabilities do not move
    biased = Classifier(CLASSES, np.eye(3, dtype=np.float32),
                        {"logit_scale": 2.0, "logit_bias": -10.0})
    _, _, shifted, _ = zeroshot_scores(queries, np.arange(1), biased,
                                       pd.DataFrame({"image_id": []}), _estimator())
    np.testing.assert_allclose(shifted, probabilities, rtol=1e-5)
