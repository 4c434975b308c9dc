"""A cell's saliency numbers: the share of each map inside the written word's box."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

#: Columns of a cell's ``mass.parquet`` (one row per image, view, method and class role).
MASS_COLUMNS = ["image_id", "view", "method", "role", "class_name", "second_role",
                "mass_in_box", "box_fraction"]


def mass_summary(mass: pd.DataFrame, estimate: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Per method and view: mean share inside the box for the object's and the word's class,
    and their paired difference (word - object, per image), each with a bootstrap interval.

    Only images whose second class is the written word count (``second_role == "word"``).
    ``estimate(name, values)`` is the cell's :class:`~cliprobe.scores.estimates.Estimator`.
    """
    summary: dict[str, Any] = {}
    words = mass[mass["second_role"] == "word"]
    for (method, view), rows in words.groupby(["method", "view"], sort=True):
        wide = rows.pivot_table(index="image_id", columns="role", values="mass_in_box",
                                aggfunc="first")
        if not {"object", "second"} <= set(wide.columns):
            continue
        key = f"{method}/{view}"
        summary.setdefault(method, {})[view] = {
            "mass_in_box_object": estimate(f"{key}/object", wide["object"].to_numpy()),
            "mass_in_box_word": estimate(f"{key}/word", wide["second"].to_numpy()),
            "mass_in_box_word_minus_object": estimate(
                f"{key}/difference", (wide["second"] - wide["object"]).to_numpy()),
            "box_fraction": float(np.nanmean(rows["box_fraction"])),
        }
    return summary
