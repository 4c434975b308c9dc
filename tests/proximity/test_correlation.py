"""Spearman's rho with a bootstrap interval over pairs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cliprobe.proximity.correlation import spearman_interval


def test_rho_is_scipys_and_the_interval_holds_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(60)
    y = 0.6 * x + rng.standard_normal(60)
    result = spearman_interval(x, y, resamples=500, confidence=0.95, seed=1)
    assert result["rho"] == pytest.approx(stats.spearmanr(x, y)[0])
    assert result["ci_low"] < result["rho"] < result["ci_high"]
    assert result["n_pairs"] == 60 and result["resamples"] == 500
    again = spearman_interval(x, y, resamples=500, confidence=0.95, seed=1)
    assert again == result  # seeded


def test_a_monotone_relation_and_the_degenerate_cases() -> None:
    x = np.arange(10.0)
    perfect = spearman_interval(x, x ** 3, resamples=200, confidence=0.9, seed=0)
    assert perfect["rho"] == pytest.approx(1.0)
    assert perfect["ci_low"] == pytest.approx(1.0) and perfect["ci_high"] == pytest.approx(1.0)
    with_nan = spearman_interval(np.array([1.0, 2.0, np.nan, 4.0]),
                                 np.array([1.0, 3.0, 5.0, 2.0]), 100, 0.95, 0)
    assert with_nan["n_pairs"] == 3
    assert spearman_interval(x, np.ones(10), 100, 0.95, 0)["rho"] is None
    assert spearman_interval(x[:2], x[:2], 100, 0.95, 0)["rho"] is None
