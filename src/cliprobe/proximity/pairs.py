"""Per (object, written word) pair of a cell: what the written word did."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The word column's value for photos with nothing written on them.
BLANK = "blank"
PAIR_COLUMNS = ["object", "word", "condition", "n_images", "p_object", "p_word",
                "attack_success", "acc1"]


def has_words(per_image: pd.DataFrame) -> bool:
    """True when some image of the cell with a class has a word written on it."""
    if "written_word" not in per_image:
        return False
    labelled = per_image["label"].astype(str) != ""
    return bool(((per_image["written_word"] != "") & labelled).any())


def word_pairs(per_image: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per (object, word): ``n_images`` and the means over them of ``p_object``
    (probability of the true class), ``p_word`` (of the written word's class; NaN for blank
    and matching words), ``attack_success`` (predicted as the word; NaN likewise) and ``acc1``.

    ``per_image``: a cell's ``per_image.parquet``; images without a class (a caption
    dataset's) have no object and are left out. ``condition``: the dataset's (real
    typographic photos), else ``clean`` (nothing written), ``matching_text`` (the word is the
    object's name) or ``typographic_attack``.
    """
    labelled = per_image[per_image["label"].astype(str) != ""]  # captioned images: no object
    frame = labelled[["image_id", "label", "written_word", "p_true", "p_word",
                      "attack_success", "zeroshot_correct"]].copy()
    frame["word"] = frame["written_word"].where(frame["written_word"] != "", BLANK)
    derived = np.where(frame["written_word"] == "", "clean",
                       np.where(frame["written_word"] == frame["label"], "matching_text",
                                "typographic_attack"))
    if "condition" in manifest:
        condition_of = dict(zip(manifest["image_id"].astype(str), manifest["condition"],
                                strict=True))
        frame["condition"] = [condition_of.get(str(i)) or d
                              for i, d in zip(frame["image_id"], derived, strict=True)]
    else:
        frame["condition"] = derived
    grouped = frame.groupby(["label", "word"], sort=True)
    pairs = grouped.agg(condition=("condition", "first"), n_images=("image_id", "size"),
                        p_object=("p_true", "mean"), p_word=("p_word", "mean"),
                        attack_success=("attack_success", "mean"),
                        acc1=("zeroshot_correct", "mean")).reset_index()
    return pairs.rename(columns={"label": "object"})[PAIR_COLUMNS]
