"""Per (object, word) pairs of a cell, and the text-space cosine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cliprobe.io.classifier import Classifier
from cliprobe.proximity.pairs import has_words, word_pairs
from cliprobe.proximity.text import text_cosine


def _per_image() -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": ["a1", "a2", "a3", "m1", "m2"],
        "label": ["apple", "apple", "apple", "mug", "mug"],
        "written_word": ["ipod", "ipod", "", "mug", "ipod"],
        "p_true": [0.2, 0.4, 0.9, 0.8, 0.5],
        "p_word": [0.7, 0.5, np.nan, np.nan, 0.3],
        "attack_success": [1.0, 0.0, np.nan, np.nan, 0.0],
        "zeroshot_correct": [0.0, 1.0, 1.0, 1.0, 1.0],
    })


def test_pairs_average_their_images_and_name_the_condition() -> None:
    pairs = word_pairs(_per_image(), pd.DataFrame({"image_id": ["x"], "label": ["apple"]}))
    by_pair = pairs.set_index(["object", "word"])
    apple_ipod = by_pair.loc[("apple", "ipod")]
    assert apple_ipod["n_images"] == 2 and apple_ipod["condition"] == "typographic_attack"
    assert apple_ipod["p_word"] == pytest.approx(0.6)
    assert apple_ipod["attack_success"] == pytest.approx(0.5)
    assert apple_ipod["p_object"] == pytest.approx(0.3) and apple_ipod["acc1"] == 0.5
    assert by_pair.loc[("apple", "blank"), "condition"] == "clean"
    assert by_pair.loc[("mug", "mug"), "condition"] == "matching_text"
    assert has_words(_per_image())
    assert not has_words(_per_image().assign(written_word=""))


def test_the_datasets_condition_wins() -> None:
    manifest = pd.DataFrame({"image_id": ["a3"], "label": ["apple"], "condition": ["clean"]})
    pairs = word_pairs(_per_image(), manifest)
    assert pairs.set_index(["object", "word"]).loc[("apple", "blank"), "condition"] == "clean"


def test_text_cosine_reads_the_classifiers_columns() -> None:
    weights = np.array([[1.0, 0.6, 0.0], [0.0, 0.8, 1.0]], dtype=np.float32)  # (D=2, C=3)
    classifier = Classifier(["apple", "ipod", "mug"], weights, {})
    assert text_cosine(classifier, "apple", "ipod") == pytest.approx(0.6)
    assert text_cosine(classifier, "ipod", "mug") == pytest.approx(0.8)
    assert np.isnan(text_cosine(classifier, "apple", "laptop"))


def test_images_without_a_class_have_no_pair() -> None:
    captioned = _per_image().assign(label="")  # a caption dataset: words, but no object
    assert not has_words(captioned)
    mixed = pd.concat([_per_image(), captioned.assign(image_id="c1")], ignore_index=True)
    pairs = word_pairs(mixed, pd.DataFrame({"image_id": ["x"], "label": ["apple"]}))
    assert "" not in set(pairs["object"]) and pairs["n_images"].sum() == 5
