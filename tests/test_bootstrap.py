"""Bootstrap intervals on cases with known answers."""

from __future__ import annotations

import numpy as np

from cliprobe.metrics.bootstrap import bootstrap_mean


def test_constant_metric_has_zero_width_interval() -> None:
    estimate = bootstrap_mean(np.full(50, 0.7), 500, 0.95, seed=1)
    assert estimate.ci_low == estimate.value == estimate.ci_high
    assert abs(estimate.value - 0.7) < 1e-12


def test_interval_is_seeded() -> None:
    values = np.random.default_rng(0).random(40)
    assert bootstrap_mean(values, 300, 0.95, 5) == bootstrap_mean(values, 300, 0.95, 5)


def test_fair_coin_interval_covers_half_at_about_nominal_rate() -> None:
    rng = np.random.default_rng(123)
    trials, covered = 300, 0
    for trial in range(trials):
        flips = rng.integers(0, 2, size=200).astype(float)
        estimate = bootstrap_mean(flips, 400, 0.95, seed=trial)
        covered += estimate.ci_low <= 0.5 <= estimate.ci_high
    # nominal 95%; percentile bootstrap of a mean of 200 is close. 300 trials: sd ~1.3%.
    assert 0.90 <= covered / trials <= 0.99


def test_empty_and_single_values() -> None:
    assert np.isnan(bootstrap_mean(np.array([]), 100, 0.95, 0).value)
    single = bootstrap_mean(np.array([0.3]), 100, 0.95, 0)
    assert single.ci_low == single.ci_high == 0.3
