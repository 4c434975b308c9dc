"""The object x written word matrix (Distill style) and the proximity figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cliprobe.plots.gallery import most_fooled_photos
from cliprobe.plots.words import (
    OWN_NAME,
    matrix_columns,
    matrix_values,
    object_word_matrix,
    proximity_figure,
)


def _pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "object": ["apple", "apple", "apple", "mug", "mug", "mug"],
        "word": ["blank", "apple", "ipod", "blank", "mug", "apple"],
        "condition": ["clean", "matching_text", "typographic_attack", "clean",
                      "matching_text", "typographic_attack"],
        "n_images": [1] * 6,
        "p_object": [0.9, 0.95, 0.2, 0.8, 0.9, 0.3],
        "p_word": [np.nan, np.nan, 0.7, np.nan, np.nan, 0.6],
        "attack_success": [np.nan, np.nan, 1.0, np.nan, np.nan, 0.0],
        "acc1": [1, 1, 0, 1, 1, 1],
        "text_cosine": [np.nan, np.nan, 0.5, np.nan, np.nan, 0.3],
        "wordnet_wup": [np.nan, np.nan, 0.4, np.nan, np.nan, np.nan],
    })


def test_blank_and_own_name_are_the_reference_columns() -> None:
    pairs = _pairs()
    assert matrix_columns(pairs) == ["blank", OWN_NAME, "apple", "ipod"]
    p_object = matrix_values(pairs, "p_object")
    assert p_object.loc["apple", OWN_NAME] == 0.95 and p_object.loc["mug", OWN_NAME] == 0.9
    assert np.isnan(p_object.loc["apple", "apple"])  # shown under (own name) instead
    assert p_object.loc["mug", "apple"] == 0.3 and np.isnan(p_object.loc["mug", "ipod"])


def test_figures_draw_and_say_random_weights() -> None:
    matrix = object_word_matrix(_pairs(), "smoke on wild: original", random=True)
    assert "RANDOM WEIGHTS" in matrix.get_suptitle()
    correlations = pd.DataFrame({"measure": ["text_cosine"], "outcome": ["p_word"],
                                 "rho": [1.0], "ci_low": [1.0], "ci_high": [1.0],
                                 "n_pairs": [2], "source": ["classifier"]})
    figure = proximity_figure(_pairs(), correlations, "smoke", random=False)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == "Spearman rho 1.00 [1.00, 1.00], n = 2"
    assert "RANDOM WEIGHTS" not in figure.get_suptitle()


def test_most_fooled_photos_put_the_flipped_first() -> None:
    per_image = pd.DataFrame({
        "image_id": ["a", "b", "c", "d"], "label": ["apple"] * 4,
        "written_word": ["ipod", "ipod", "", "apple"],
        "zeroshot_predicted": ["apple", "ipod", "apple", "apple"],
        "zeroshot_correct": [1.0, 0.0, 1.0, 1.0], "p_word": [0.4, 0.6, np.nan, np.nan],
    })
    assert most_fooled_photos(per_image)["image_id"].tolist() == ["b", "a"]
