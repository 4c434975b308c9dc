"""Percentile bootstrap confidence intervals, seeded and vectorised.

Per-image metrics (recall, drift) resample images. Seed 001's score is a mean of per-class
means, so it resamples classes (a cluster bootstrap): the score weights classes equally, and
its uncertainty is dominated by which classes were drawn, not by images within a class.

Text -> image recall is a mean over captions, but captions of one image are not independent
(they all search for the same image): it resamples *images* with their captions kept
together. With per-image values ``v_i`` (the fraction of image i's captions that hit) and
weights ``w_i`` (its number of captions) the statistic is the ratio ``sum(w v) / sum(w)``,
i.e. exactly the caption mean, recomputed on each resample of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 200


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    resampled: str
    resamples: int

    def as_dict(self) -> dict[str, float | str | int]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "resampled": self.resampled, "resamples": self.resamples}


def bootstrap_mean(
    values: np.ndarray, resamples: int, confidence: float, seed: int, resampled: str = "images",
    weights: np.ndarray | None = None,
) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap interval (NaN values are an error).

    With ``weights`` (one positive weight per value) the statistic is the weighted mean
    ``sum(w v) / sum(w)``, recomputed on every resample of the (value, weight) pairs: the
    cluster bootstrap of a mean over sub-units (captions) grouped by unit (image).
    """
    data = np.asarray(values, dtype=np.float64)
    weight = None if weights is None else np.asarray(weights, dtype=np.float64)
    if weight is not None and (weight.shape != data.shape or (weight <= 0).any()):
        raise ValueError("weights must be positive and shaped like values")
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), resampled, resamples)
    value = (float(data.mean()) if weight is None
             else float((weight * data).sum() / weight.sum()))
    if resamples == 0 or data.size == 1:
        return Estimate(value, value, value, resampled, resamples)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, BLOCK):
        count = min(BLOCK, resamples - start)
        picks = rng.integers(0, data.size, size=(count, data.size))
        if weight is None:
            means[start : start + count] = data[picks].mean(axis=1)
        else:
            means[start : start + count] = ((weight * data)[picks].sum(axis=1)
                                            / weight[picks].sum(axis=1))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    # Clamp float noise so a constant metric gets an exactly zero-width interval.
    return Estimate(value, float(min(low, value)), float(max(high, value)), resampled, resamples)
