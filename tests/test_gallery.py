"""Choosing the most-fooled images for seed 000's gallery figure."""

from __future__ import annotations

import pandas as pd

from cliprobe.plots.gallery import most_fooled


def _cell(correct: list[int], p_true: list[float], predicted: list[str],
          words: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"image_id": ["a", "b", "c", "d"], "label": ["egg"] * 4,
                         "zeroshot_correct": correct, "p_true": p_true,
                         "zeroshot_predicted": predicted, "written_word": words})


def test_flipped_to_the_word_first_then_largest_drop() -> None:
    clean = _cell([1, 1, 1, 0], [0.9, 0.8, 0.9, 0.3], ["egg"] * 3 + ["cat"], [""] * 4)
    attacked = _cell([0, 0, 1, 0], [0.4, 0.1, 0.85, 0.35],
                     ["dog", "cat", "egg", "cat"], ["cat"] * 4)
    chosen = most_fooled(clean, attacked)
    # b flipped to the word, a flipped to another class, c only lost probability, d gained
    assert chosen["image_id"].tolist() == ["b", "a", "c"]


def test_images_without_a_class_are_ranked_by_their_best_caption_rank() -> None:
    """A caption dataset: no true class, so the image -> text rank says who was hurt."""
    def cell(ranks: list[int], predicted: list[str], words: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"image_id": ["a", "b", "c"], "label": [""] * 3,
                             "zeroshot_correct": [float("nan")] * 3,
                             "p_true": [float("nan")] * 3, "zeroshot_predicted": predicted,
                             "written_word": words, "best_caption_rank": ranks})

    clean = cell([0, 3, 1], ["bus", "bus", "dog"], [""] * 3)
    attacked = cell([2, 40, 1], ["dog", "bus", "bus"], ["cat", "cat", "bus"])
    chosen = most_fooled(clean, attacked)
    # c is predicted as its written word but not harder to find; b fell furthest
    assert chosen["image_id"].tolist() == ["b", "a"]
