"""Paired comparisons of two cells scored on the same images (manipulation vs original, A vs B).

Pure functions over arrays. Every difference is ``b − a`` (the second cell minus the first: for
"manipulation vs original", the manipulated cell minus the original), and the pairs are the
same images, aligned by image id (:func:`align_pairs`) before anything else.

**Paired bootstrap of the difference of means.** Each image contributes its own difference
``d_i = b_i − a_i``; the difference of the two means is ``mean(d)``, and resampling *images*
(both cells' values of an image move together) keeps the pairing, so the interval reflects the
variance of the difference, not of each mean on its own (for two cells on the same images the
two means are strongly correlated and independent resampling would grossly overstate it).

Seed 001's score is a mean of per-class means, so its difference is the mean over classes of
each class's mean difference (``mean_k(mean_{i∈k} b_i) − mean_k(mean_{i∈k} a_i) =
mean_k(mean_{i∈k} d_i)``, the same images in both cells). :func:`paired_class_bootstrap`
resamples *classes* with replacement and recomputes the mean of the drawn classes' mean
differences: the score weights classes equally whatever their size, and images of a class are
not independent (they are retrieved among each other), so the class is the sampling unit. This
matches the per-cell intervals of :mod:`cliprobe.metrics.bootstrap`.

**Interval**: percentile interval of the resampled differences at the given confidence (the
same construction as :func:`cliprobe.metrics.bootstrap.bootstrap_mean`), clamped to contain
the point estimate, so identical cells give exactly ``[0, 0]`` and a constant shift ``c`` gives
``[c, c]``.

**p-value** (two-sided): ``p = min(1, 2 · min((1 + #{d* ≤ 0}) / (B + 1), (1 + #{d* ≥ 0}) / (B
+ 1)))`` over the ``B`` resampled differences ``d*``. This is the p-value obtained by inverting
the percentile interval: the equal-tailed ``(1 − α)`` percentile interval excludes 0 exactly
when less than ``α / 2`` of the bootstrap distribution lies on the far side of 0, i.e. (up to
the ``1 / B`` resolution and the +1 below) when ``p < α``. So the star in the tables (interval
excludes 0) and ``p < 1 − confidence`` tell the same story. The alternative, the centred
``P(|d* − d̂| ≥ |d̂|)``, inverts the *basic* (reverse-percentile) interval instead and can
disagree with the percentile interval reported next to it when the bootstrap distribution is
skewed (recalls near 0 or 1). The ``+1`` (Davison & Hinkley 1997, eq. 4.11) counts the
observed sample among the resamples so the p-value is never exactly 0: the smallest reportable
value is ``2 / (B + 1)`` (read "p < 2 / (B + 1)"). Identical cells give ``p = 1``.

**Weighted pairs** (text -> image recall, a mean over captions grouped by image): each image
carries its per-image difference ``d_i`` (of the fractions of its captions that hit) and a
weight ``w_i`` (its number of captions, the same in both cells); the difference is
``sum(w d) / sum(w)`` (exactly the difference of the two caption means) and resampling draws
images with their captions together (:func:`resample_ratio_means`).

**McNemar's test** for binary per-image outcomes (recall@k): conditional on the ``n``
discordant pairs, the number that went 1 → 0 is Binomial(n, 1/2) under "no difference";
:func:`mcnemar` uses the *exact* two-sided binomial test (``scipy.stats.binomtest``), not the
mid-p. The exact test never rejects more often than its nominal level; the mid-p is closer to
nominal on average but can exceed it (Fagerland, Lydersen & Laake 2013). Cells here are often
small (a dozen to a few hundred images, few discordant pairs), where that matters most, and
the benchmark's purpose is to back a claim of "significant" conservatively, so exact is the
default; ``mid_p=True`` gives the mid-p for those who prefer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Resamples drawn per block (bounds memory: ``BLOCK × n`` indices at a time).
BLOCK = 200
#: Relative spread of the differences below which they are one constant (float rounding).
CONSTANT_TOLERANCE = 16 * np.finfo(np.float64).eps
#: Elements of a ``block × n`` resampling matrix held at once by :func:`joint_bootstrap_means`.
JOINT_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class PairedDifference:
    """A paired difference ``b − a`` with its bootstrap interval and p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    resampled: str
    resamples: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return bool(self.ci_low > 0.0 or self.ci_high < 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"difference": self.difference, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "p_value": self.p_value, "significant": self.significant, "n": self.n,
                "resampled": self.resampled, "resamples": self.resamples}


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired binary outcomes ``a`` (first cell) and ``b`` (second)."""

    lost: int  # a = 1, b = 0
    gained: int  # a = 0, b = 1
    p_value: float
    mid_p: bool

    @property
    def discordant(self) -> int:
        """Pairs whose outcome differs between the two cells."""
        return self.lost + self.gained


def align_pairs(ids_a: np.ndarray, ids_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``a`` and ``b`` of the image ids present in both, in ``a``'s order.

    Ids must be unique within each side (``ValueError`` otherwise: a cell holds each image once).
    """
    a = pd.Index(np.asarray(ids_a).astype(str))
    b = pd.Index(np.asarray(ids_b).astype(str))
    for side, index in (("first", a), ("second", b)):
        if not index.is_unique:
            duplicated = index[index.duplicated()].unique()[:3].tolist()
            raise ValueError(f"duplicate image ids in the {side} cell: {duplicated}")
    in_b = b.get_indexer(a)
    rows_a = np.flatnonzero(in_b >= 0)
    return rows_a, in_b[rows_a].astype(np.int64)


def resample_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` bootstrap means of ``values`` (resampled with replacement).

    When ``values`` take few distinct values (binary recall differences take at most three)
    the resample mean depends only on how often each distinct value is drawn, which is
    Multinomial(n, frequencies): drawing those counts is exact and O(distinct) per resample
    instead of O(n). Otherwise indices are drawn in blocks of :data:`BLOCK` resamples.
    """
    data = np.asarray(values, dtype=np.float64)
    size = data.size
    distinct, counts = np.unique(data, return_counts=True)
    if distinct.size * 4 <= size:
        draws = rng.multinomial(size, counts / size, size=resamples)
        return draws @ distinct / size
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, BLOCK):
        count = min(BLOCK, resamples - start)
        picks = rng.integers(0, size, size=(count, size))
        means[start : start + count] = data[picks].mean(axis=1)
    return means


def resample_ratio_means(
    values: np.ndarray, weights: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``resamples`` bootstrap values of ``sum(w v) / sum(w)``, resampling (v, w) pairs."""
    data = np.asarray(values, dtype=np.float64)
    weight = np.asarray(weights, dtype=np.float64)
    weighted = weight * data
    size = data.size
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, BLOCK):
        count = min(BLOCK, resamples - start)
        picks = rng.integers(0, size, size=(count, size))
        means[start : start + count] = weighted[picks].sum(axis=1) / weight[picks].sum(axis=1)
    return means


def bootstrap_p_value(resampled: np.ndarray) -> float:
    """Two-sided p-value of "difference = 0" from bootstrap differences (module docstring)."""
    draws = np.asarray(resampled, dtype=np.float64)
    total = draws.size + 1
    below = (1 + np.count_nonzero(draws <= 0.0)) / total
    above = (1 + np.count_nonzero(draws >= 0.0)) / total
    return float(min(1.0, 2.0 * min(below, above)))


def _paired_estimate(
    differences: np.ndarray, resamples: int, confidence: float, seed: int, resampled: str,
    weights: np.ndarray | None = None,
) -> PairedDifference:
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        nan = float("nan")
        return PairedDifference(nan, nan, nan, nan, 0, resampled, resamples)
    if not np.isfinite(d).all():
        raise ValueError("paired values must be finite")
    if weights is not None:
        weight = np.asarray(weights, dtype=np.float64)
        if weight.shape != d.shape or not (weight > 0).all():
            raise ValueError("weights must be positive and one per pair")
    value = float(d.mean()) if weights is None else float((weight * d).sum() / weight.sum())
    if resamples == 0:
        return PairedDifference(value, value, value, float("nan"), int(d.size), resampled, 0)
    if np.ptp(d) <= CONSTANT_TOLERANCE * max(1.0, float(np.abs(d).max())):
        # a constant difference (up to float rounding of b − a): every resample equals it
        draws = np.full(resamples, value)
    elif weights is not None:
        draws = resample_ratio_means(d, weight, resamples, np.random.default_rng(seed))
    else:
        draws = resample_means(d, resamples, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return PairedDifference(value, float(min(low, value)), float(max(high, value)),
                            bootstrap_p_value(draws), int(d.size), resampled, resamples)


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, resamples: int, confidence: float, seed: int,
    weights: np.ndarray | None = None,
) -> PairedDifference:
    """Paired bootstrap of ``mean(b) − mean(a)``, resampling images (rows of aligned arrays).

    ``a`` and ``b`` are per-image values of the same images in the same order (see
    :func:`align_pairs`). Percentile interval and p-value as in the module docstring; with
    ``resamples == 0`` the interval is the point and the p-value NaN. ``weights`` (one per
    image, e.g. its number of captions) make both means weighted (module docstring).
    """
    first, second = _checked_pair(a, b)
    return _paired_estimate(second - first, resamples, confidence, seed, "images", weights)


def paired_class_bootstrap(
    a: np.ndarray, b: np.ndarray, labels: np.ndarray, resamples: int, confidence: float,
    seed: int,
) -> PairedDifference:
    """Paired bootstrap of a mean-of-class-means difference, resampling classes.

    Each class's mean difference ``mean_{i∈k}(b_i − a_i)`` is computed once; resampling draws
    classes with replacement and averages the drawn classes' differences (module docstring).
    ``n`` of the result is the number of classes.
    """
    first, second = _checked_pair(a, b)
    groups = np.asarray(labels)
    if groups.shape != first.shape:
        raise ValueError(f"labels have shape {groups.shape}, values {first.shape}")
    per_class = pd.Series(second - first).groupby(groups).mean().to_numpy()
    return _paired_estimate(per_class, resamples, confidence, seed, "classes")


def _checked_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.ndim != 1 or first.shape != second.shape:
        raise ValueError(
            f"paired values must be two 1-d arrays of equal length, got {first.shape} and "
            f"{second.shape}: align them by image id first"
        )
    return first, second


def mcnemar(a: np.ndarray, b: np.ndarray, mid_p: bool = False) -> McNemarResult:
    """McNemar's test of paired binary outcomes (exact binomial; mid-p on request).

    ``a`` and ``b`` hold 0/1 (or booleans) for the same images in the same order. With no
    discordant pair the p-value is 1.
    """
    first, second = _checked_pair(a, b)
    if not (np.isin(first, (0.0, 1.0)).all() and np.isin(second, (0.0, 1.0)).all()):
        raise ValueError("McNemar's test needs binary (0/1) outcomes")
    lost = int(np.count_nonzero((first == 1.0) & (second == 0.0)))
    gained = int(np.count_nonzero((first == 0.0) & (second == 1.0)))
    n = lost + gained
    if n == 0:
        return McNemarResult(lost, gained, 1.0, mid_p)
    if mid_p:
        k = min(lost, gained)
        p = 2.0 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5)
    else:
        p = stats.binomtest(lost, n, 0.5, alternative="two-sided").pvalue
    return McNemarResult(lost, gained, float(min(1.0, p)), mid_p)


def joint_bootstrap_means(matrix: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap column means of ``matrix`` (images × cells) with one image resample for all.

    Row ``r`` of the ``(resamples, cells)`` result is every column's mean over the same
    resampled images, so quantities combining several cells of the same images (CE sums
    errors over severities, relative CE subtracts the clean error) get intervals that respect
    their correlation. Draws multinomial image counts in blocks (``counts @ matrix / n``).
    """
    data = np.asarray(matrix, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"need a non-empty (images, cells) matrix, got shape {data.shape}")
    size = data.shape[0]
    rng = np.random.default_rng(seed)
    block = max(1, min(BLOCK, JOINT_BLOCK_ELEMENTS // size))
    means = np.empty((resamples, data.shape[1]), dtype=np.float64)
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        picks = rng.integers(0, size, size=(count, size))
        offsets = (np.arange(count) * size)[:, None]
        counts = np.bincount((picks + offsets).ravel(), minlength=count * size)
        means[start : start + count] = counts.reshape(count, size) @ data / size
    return means
