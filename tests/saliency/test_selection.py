"""Which images get saliency maps, for which classes, against which reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cliprobe.saliency.selection import choose_subjects

CLASSES = ["apple", "mug", "ipod", "cat"]


def _distill_like() -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": ["apple-blank.jpg", "apple-ipod.jpg", "apple-apple.jpg", "mug-ipod.jpg"],
        "label": ["apple", "apple", "apple", "mug"],
        "word_label": [None, "ipod", "apple", "ipod"],
        "condition": ["clean", "typographic_attack", "matching_text", "typographic_attack"],
    })


def _logits(n: int) -> np.ndarray:
    # class 3 ("cat") scores highest on every image, then "ipod"
    return np.tile(np.array([0.1, 0.2, 0.5, 0.9]), (n, 1))


def test_real_photos_use_the_unlabelled_photo_as_reference() -> None:
    manifest = _distill_like()
    ids = manifest["image_id"].tolist()
    subjects = choose_subjects(ids, manifest["label"].tolist(), [{}] * 4, _logits(4), CLASSES,
                               manifest, True, None, 0, "m/d/original")
    by_id = {s.image_id: s for s in subjects}
    assert set(by_id) == {"apple-ipod.jpg", "apple-apple.jpg", "mug-ipod.jpg"}  # blank: reference
    assert by_id["apple-ipod.jpg"].reference_id == "apple-blank.jpg"
    assert (by_id["apple-ipod.jpg"].second_class, by_id["apple-ipod.jpg"].second_role) == (
        "ipod", "word")
    assert by_id["mug-ipod.jpg"].reference_id is None  # no unlabelled mug photo
    # the object's own name is no attack: the strongest other class is explained instead
    assert (by_id["apple-apple.jpg"].second_class, by_id["apple-apple.jpg"].second_role) == (
        "cat", "competitor")
    assert by_id["apple-ipod.jpg"].word_box is None


def test_manipulated_cells_compare_with_the_clean_image_and_keep_the_box() -> None:
    manifest = pd.DataFrame({"image_id": ["a", "b"], "label": ["apple", "mug"]})
    infos = [{"word_label": "cat", "word_box": [1, 2, 30, 40]}, {"word_label": "mug"}]
    subjects = choose_subjects(["a", "b"], ["apple", "mug"], infos, _logits(2), CLASSES,
                               manifest, False, None, 0, "m/d/postit")
    assert [s.reference_id for s in subjects] == ["a", "b"]
    assert subjects[0].second_class == "cat" and subjects[0].word_box == (1.0, 2.0, 30.0, 40.0)
    assert (subjects[1].second_class, subjects[1].second_role) == ("cat", "competitor")


def test_the_subset_is_seeded_and_in_file_order() -> None:
    ids = [f"img{i:02d}" for i in range(30)]
    manifest = pd.DataFrame({"image_id": ids, "label": ["apple"] * 30})
    def pick(seed: int, key: str = "m/d/x") -> list[str]:
        return [s.image_id for s in choose_subjects(ids, ["apple"] * 30, [{}] * 30,
                                                    _logits(30), CLASSES, manifest, False, 5,
                                                    seed, key)]
    first = pick(0)
    assert len(first) == 5 and first == sorted(first) and pick(0) == first
    assert pick(1) != first or pick(0, "m/d/y") != first


def test_images_without_a_class_are_not_explained() -> None:
    manifest = pd.DataFrame({"image_id": ["a", "c"], "label": ["apple", ""]})
    subjects = choose_subjects(["a", "c"], ["apple", ""], [{"word_label": "cat"}] * 2,
                               _logits(2), CLASSES, manifest, False, None, 0, "m/d/typographic")
    assert [s.image_id for s in subjects] == ["a"]
