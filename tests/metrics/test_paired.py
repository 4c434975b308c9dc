"""Paired bootstrap, its p-value and McNemar's test on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.metrics.paired import (
    align_pairs,
    bootstrap_p_value,
    joint_bootstrap_means,
    mcnemar,
    paired_bootstrap,
    paired_class_bootstrap,
    resample_means,
)


def test_identical_cells_differ_by_exactly_zero_with_p_one() -> None:
    values = np.random.default_rng(0).random(60)
    result = paired_bootstrap(values, values.copy(), 500, 0.95, seed=3)
    assert result.difference == result.ci_low == result.ci_high == 0.0
    assert result.p_value == 1.0
    assert not result.significant
    binary = (values > 0.5).astype(float)
    same = paired_bootstrap(binary, binary, 500, 0.95, seed=3)
    assert (same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 1.0)


def test_constant_shift_gives_the_exact_difference_and_smallest_p() -> None:
    base = np.random.default_rng(1).integers(0, 8, 40) / 8.0  # exact binary fractions
    result = paired_bootstrap(base, base + 0.25, 999, 0.95, seed=0)
    assert result.difference == result.ci_low == result.ci_high == 0.25
    assert result.p_value == pytest.approx(2 / 1000)
    assert result.significant
    down = paired_bootstrap(base + 0.25, base, 999, 0.95, seed=0)
    assert down.difference == -0.25 and down.p_value == pytest.approx(2 / 1000)
    # a shift that is not a binary fraction: exact up to float rounding, zero-width interval
    drift = np.random.default_rng(2).random(30)
    shifted = paired_bootstrap(drift, drift - 0.1, 400, 0.95, seed=1)
    assert shifted.difference == pytest.approx(-0.1, abs=1e-12)
    assert shifted.ci_low == shifted.ci_high == shifted.difference


def test_interval_covers_a_known_mean_difference_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(42)
    trials, covered = 300, 0
    for trial in range(trials):
        a = rng.normal(0.0, 1.0, 150)
        b = a + 0.3 + rng.normal(0.0, 0.8, 150)  # true mean difference 0.3
        result = paired_bootstrap(a, b, 400, 0.95, seed=trial)
        covered += result.ci_low <= 0.3 <= result.ci_high
    # nominal 95%; 300 trials: sd ~1.3%; the percentile interval runs a little narrow at n=150
    assert 0.90 <= covered / trials <= 0.99


def test_binary_interval_covers_the_true_difference_and_p_is_calibrated() -> None:
    """Paired 0/1 outcomes (the multinomial path): coverage and null rejection rate."""
    rng = np.random.default_rng(7)
    trials, covered, rejected = 300, 0, 0
    for trial in range(trials):
        a = (rng.random(200) < 0.6).astype(float)
        flip = rng.random(200) < 0.2  # 20% of outcomes redrawn with P(1) = 0.35
        b = np.where(flip, (rng.random(200) < 0.35).astype(float), a)
        truth = 0.2 * (0.35 - 0.6)  # E[b - a] = -0.05
        result = paired_bootstrap(a, b, 400, 0.95, seed=trial)
        covered += result.ci_low <= truth <= result.ci_high
        null = paired_bootstrap(a, np.where(flip, a[rng.permutation(200)], a), 400, 0.95,
                                seed=trial)
        rejected += null.p_value < 0.05
    assert 0.90 <= covered / trials <= 0.99
    # under "no difference" the p-value falls below 0.05 in about 5% of trials
    assert rejected / trials <= 0.10


def test_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(11)
    agree = 0
    for trial in range(200):
        a = rng.normal(0, 1, 60)
        b = a + rng.normal(0.25, 1.0, 60)
        result = paired_bootstrap(a, b, 1000, 0.95, seed=trial)
        agree += result.significant == (result.p_value < 0.05)
    assert agree >= 196  # may differ only when 0 sits on an interval end (resolution 1/B)


def test_bootstrap_p_value_definition() -> None:
    assert bootstrap_p_value(np.zeros(9)) == 1.0
    assert bootstrap_p_value(np.ones(9)) == pytest.approx(2 / 10)
    # 2 of 9 draws at or below 0: 2 * (1 + 2) / 10
    assert bootstrap_p_value(np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7.0])) == pytest.approx(0.6)


def test_paired_bootstrap_is_seeded_and_handles_degenerate_input() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random(50), rng.random(50)
    assert paired_bootstrap(a, b, 300, 0.9, 8) == paired_bootstrap(a, b, 300, 0.9, 8)
    assert paired_bootstrap(a, b, 300, 0.9, 8) != paired_bootstrap(a, b, 300, 0.9, 9)
    empty = paired_bootstrap(np.array([]), np.array([]), 100, 0.95, 0)
    assert np.isnan(empty.difference) and empty.n == 0
    none = paired_bootstrap(a, b, 0, 0.95, 0)
    assert none.ci_low == none.ci_high == none.difference and np.isnan(none.p_value)
    with pytest.raises(ValueError, match="align them"):
        paired_bootstrap(a, b[:-1], 10, 0.95, 0)


def test_class_bootstrap_resamples_classes_of_mean_differences() -> None:
    labels = np.array(["a"] * 6 + ["b"] * 2 + ["c"] * 2)
    base = np.zeros(10)
    other = np.array([0.5] * 6 + [0.2] * 2 + [0.0] * 2)
    result = paired_class_bootstrap(base, other, labels, 2000, 0.95, seed=0)
    # mean of class means: (0.5 + 0.2 + 0.0) / 3, not the image mean 0.34
    assert result.difference == pytest.approx(0.7 / 3)
    assert result.n == 3 and result.resampled == "classes"
    # 3 classes drawn from {0.5, 0.2, 0.0}: all three 0.0 (or all 0.5) has probability
    # 1/27 > 2.5%, so the 95% interval runs from 0 to 0.5 (images resampled would not)
    assert result.ci_low == pytest.approx(0.0) and result.ci_high == pytest.approx(0.5)
    same = paired_class_bootstrap(other, other, labels, 200, 0.95, seed=0)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value) == (0, 0, 0, 1)


def test_multinomial_resampling_matches_index_resampling_in_distribution() -> None:
    values = np.array([0.0] * 70 + [1.0] * 20 + [-1.0] * 10)
    fast = resample_means(values, 4000, np.random.default_rng(0))  # multinomial path
    rng = np.random.default_rng(1)
    slow = values[rng.integers(0, 100, size=(4000, 100))].mean(axis=1)
    assert fast.mean() == pytest.approx(slow.mean(), abs=0.005)
    assert fast.std() == pytest.approx(slow.std(), rel=0.06)
    assert fast.std() == pytest.approx(values.std() / 10, rel=0.06)


def test_mcnemar_on_a_hand_computed_table() -> None:
    # 12 discordant pairs: 10 lost (1 -> 0), 2 gained (0 -> 1); 30 concordant
    a = np.array([1] * 10 + [0] * 2 + [1] * 20 + [0] * 10)
    b = np.array([0] * 10 + [1] * 2 + [1] * 20 + [0] * 10)
    exact = mcnemar(a, b)
    assert (exact.lost, exact.gained, exact.discordant) == (10, 2, 12)
    # 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert exact.p_value == pytest.approx(158 / 4096)
    # mid-p: 2 * P(X <= 2) - P(X = 2) = (158 - 66) / 4096
    assert mcnemar(a, b, mid_p=True).p_value == pytest.approx(92 / 4096)
    assert mcnemar(b, a).p_value == pytest.approx(158 / 4096)  # symmetric


def test_mcnemar_without_difference() -> None:
    same = np.array([1, 0, 1, 1, 0])
    assert mcnemar(same, same).p_value == 1.0
    balanced_a, balanced_b = np.array([1, 0, 1, 0]), np.array([0, 1, 0, 1])
    assert mcnemar(balanced_a, balanced_b).p_value == 1.0
    assert mcnemar(balanced_a, balanced_b, mid_p=True).p_value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="binary"):
        mcnemar(np.array([0.5, 1.0]), np.array([1.0, 1.0]))


def test_align_pairs_joins_on_image_id_in_first_order() -> None:
    rows_a, rows_b = align_pairs(np.array(["x", "y", "z", "w"]), np.array(["w", "q", "x", "y"]))
    assert rows_a.tolist() == [0, 1, 3]
    assert rows_b.tolist() == [2, 3, 0]
    with pytest.raises(ValueError, match="duplicate"):
        align_pairs(np.array(["x", "x"]), np.array(["x"]))


def test_joint_bootstrap_shares_the_image_resample_across_cells() -> None:
    column = np.random.default_rng(3).random(80)
    matrix = np.column_stack([column, column, 1.0 - column, np.full(80, 0.5)])
    means = joint_bootstrap_means(matrix, 300, seed=4)
    assert means.shape == (300, 4)
    np.testing.assert_array_equal(means[:, 0], means[:, 1])
    np.testing.assert_allclose(means[:, 0] + means[:, 2], 1.0)
    np.testing.assert_allclose(means[:, 3], 0.5)
    assert abs(means[:, 0].std() - column.std() / np.sqrt(80)) < 0.006
    np.testing.assert_array_equal(means, joint_bootstrap_means(matrix, 300, seed=4))
