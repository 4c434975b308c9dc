"""Spearman's rank correlation with a percentile bootstrap interval over pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats


def spearman_interval(x: np.ndarray, y: np.ndarray, resamples: int, confidence: float,
                      seed: int) -> dict[str, Any]:
    """``rho`` (scipy's ``spearmanr``, ties averaged), its p-value, and a percentile bootstrap
    interval from ``resamples`` resamplings of the (x, y) pairs (NaN pairs dropped first;
    resamples whose ranks are constant are skipped). Nulls where fewer than 3 pairs remain.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    result: dict[str, Any] = {"rho": None, "ci_low": None, "ci_high": None, "p_value": None,
                              "n_pairs": int(x.size), "resamples": int(resamples),
                              "confidence": confidence}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return result
    rho, p_value = stats.spearmanr(x, y)
    result.update(rho=float(rho), p_value=float(p_value))
    if resamples > 0:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, x.size, size=(resamples, x.size))
        values = []
        for rows in draws:
            xs, ys = x[rows], y[rows]
            if np.ptp(xs) == 0 or np.ptp(ys) == 0:
                continue
            values.append(stats.spearmanr(xs, ys)[0])
        values_array = np.asarray([v for v in values if not math.isnan(v)])
        if values_array.size:
            alpha = (1 - confidence) / 2
            result.update(ci_low=float(np.quantile(values_array, alpha)),
                          ci_high=float(np.quantile(values_array, 1 - alpha)))
    return result
