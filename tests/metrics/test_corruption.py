"""CE, relative CE, mCE and relative mCE (SPEC §5) on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from cliprobe.metrics.corruption import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    EXTRAS,
    SEVERITIES,
    corruption_error,
    corruption_summary,
    mean_corruption_error,
    relative_corruption_error,
)


def _constant(error: float, severities: tuple[int, ...] = SEVERITIES) -> dict[int, float]:
    return dict.fromkeys(severities, error)


def test_constants_follow_spec_order_and_values() -> None:
    assert list(ALEXNET_ERRORS) == [
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
        "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
        "elastic_transform", "pixelate", "jpeg_compression",
    ]  # fmt: skip
    assert list(ALEXNET_ERRORS.values()) == [
        0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816,
        0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500,
    ]  # fmt: skip
    assert round(1 - 0.56522, 6) == ALEXNET_CLEAN_ERROR  # torchvision's AlexNet top-1 acc


def test_extras_match_the_manipulations() -> None:
    from cliprobe.manipulations.corruptions import EXTRA_CORRUPTIONS, IMAGENET_C_CORRUPTIONS

    assert EXTRAS == EXTRA_CORRUPTIONS
    assert tuple(ALEXNET_ERRORS) == IMAGENET_C_CORRUPTIONS


def test_alexnet_errors_give_ce_one() -> None:
    for name, mean in ALEXNET_ERRORS.items():
        assert corruption_error(_constant(mean), name) == pytest.approx(1.0)
        relative = relative_corruption_error(_constant(mean), ALEXNET_CLEAN_ERROR, name)
        assert relative == pytest.approx(1.0)


def test_ce_by_hand() -> None:
    # fog: Σ_s E = 0.1 + 0.2 + 0.3 + 0.4 + 0.5 = 1.5; Σ_s E_AlexNet = 5 × 0.819324 = 4.09662
    errors = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5}
    assert corruption_error(errors, "fog") == pytest.approx(1.5 / 4.09662)
    # relative, clean error 0.05: Σ (E − 0.05) = 1.25; 5 × (0.819324 − 0.43478) = 1.92272
    assert relative_corruption_error(errors, 0.05, "fog") == pytest.approx(1.25 / 1.92272)


def test_subset_of_severities_is_normalised_by_the_severities_present() -> None:
    # brightness at severities 2 and 4 only: (0.3 + 0.5) / (2 × 0.564592)
    assert corruption_error({2: 0.3, 4: 0.5}, "brightness") == pytest.approx(0.8 / 1.129184)
    gap = 0.564592 - ALEXNET_CLEAN_ERROR
    relative = relative_corruption_error({2: 0.3, 4: 0.5}, 0.2, "brightness")
    assert relative == pytest.approx((0.1 + 0.3) / (2 * gap))


def test_relative_ce_can_be_negative() -> None:
    assert relative_corruption_error({1: 0.1}, 0.2, "contrast") < 0


def test_mce_needs_all_15_unless_partial_is_allowed() -> None:
    ce = {name: 0.5 + index / 100 for index, name in enumerate(ALEXNET_ERRORS)}
    assert mean_corruption_error(ce) == pytest.approx(0.5 + 0.07)  # mean of 0.50 ... 0.64
    del ce["fog"]
    assert math.isnan(mean_corruption_error(ce))
    expected = (sum(0.5 + i / 100 for i in range(15)) - 0.59) / 14
    assert mean_corruption_error(ce, allow_partial=True) == pytest.approx(expected)
    assert math.isnan(mean_corruption_error({}, allow_partial=True))
    with pytest.raises(ValueError, match="spatter"):
        mean_corruption_error({**ce, "spatter": 1.0})


def test_summary_with_all_15_equal_to_alexnet() -> None:
    errors = {name: _constant(mean) for name, mean in ALEXNET_ERRORS.items()}
    errors["saturate"] = _constant(0.9)  # extras are skipped, not an error
    summary = corruption_summary(errors, ALEXNET_CLEAN_ERROR)
    assert summary["complete"] and summary["corruptions_present"] == 15
    assert list(summary["ce"]) == list(ALEXNET_ERRORS)
    for key in ("mce", "relative_mce", "mce_over_present", "relative_mce_over_present"):
        assert summary[key] == pytest.approx(1.0)


def test_summary_of_a_partial_grid_flags_it() -> None:
    # half of AlexNet's error on two corruptions, at severity 3 only
    errors = {"gaussian_noise": {3: 0.443214}, "pixelate": {3: 0.35892}}
    summary = corruption_summary(errors, clean_error=0.0)
    assert not summary["complete"] and summary["corruptions_present"] == 2
    assert math.isnan(summary["mce"]) and math.isnan(summary["relative_mce"])
    assert summary["mce_over_present"] == pytest.approx(0.5)
    expected_relative = (
        0.443214 / (0.886428 - ALEXNET_CLEAN_ERROR) + 0.35892 / (0.71784 - ALEXNET_CLEAN_ERROR)
    ) / 2
    assert summary["relative_mce_over_present"] == pytest.approx(expected_relative)
    # all 15 present but one missing a severity: mCE defined, yet not the paper's number
    errors = {name: _constant(mean) for name, mean in ALEXNET_ERRORS.items()}
    del errors["fog"][5]
    summary = corruption_summary(errors, 0.1)
    assert summary["mce"] == pytest.approx(1.0) and not summary["complete"]


@pytest.mark.parametrize(
    ("errors", "corruption", "match"),
    [
        ({}, "fog", "no severities"),
        ({0: 0.5}, "fog", "severity 0"),
        ({6: 0.5}, "fog", "severity 6"),
        ({True: 0.5}, "fog", "severity True"),
        ({1: 1.5}, "fog", "fraction"),
        ({1: float("nan")}, "fog", "fraction"),
        ({1: 0.5}, "spatter", "no AlexNet baseline"),
    ],
)
def test_bad_inputs_are_rejected(errors: dict, corruption: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        corruption_error(errors, corruption)


def test_summary_rejects_unknown_names_and_bad_clean_error() -> None:
    with pytest.raises(ValueError, match="rain"):
        corruption_summary({"rain": {1: 0.5}}, 0.1)
    with pytest.raises(ValueError, match="clean error"):
        relative_corruption_error({1: 0.5}, 43.5, "fog")
