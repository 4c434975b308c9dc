"""The quantitative companion of the maps: how much of a map falls inside the word's box."""

from __future__ import annotations

import numpy as np


def mass_inside(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of each map's positive mass inside ``mask``: ``(..., S, S)`` -> ``(...)``.

    ``mask`` ``(S, S)`` in [0, 1] (fractional at the box's edges). Negative map values
    (occlusion windows whose removal *raised* the class's probability) count as no evidence:
    the map is clipped at 0 first. NaN where a map has no positive mass.
    """
    positive = np.clip(np.asarray(maps, dtype=np.float64), 0.0, None)
    total = positive.sum(axis=(-2, -1))
    inside = (positive * np.asarray(mask, dtype=np.float64)).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
