"""ImageNet-C corruption errors normalised by AlexNet (Hendrycks & Dietterich 2019, SPEC §5).

Errors are top-1 error *fractions* in [0, 1] (not percent). For a corruption c with errors
E_{s,c} at severities s:

- CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c}
- relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean)
- mCE and relative mCE: the mean of CE_c (relative CE_c) over the 15 benchmark corruptions.

SPEC §5 gives AlexNet's error per corruption *averaged over the 5 severities*, so
Σ_s E^AlexNet_{s,c} is taken as ``n × mean`` where n is the number of severities present. With
all 5 severities this is exactly the paper's CE; with a subset it is an approximation (AlexNet's
error grows with severity, so a subset of mild severities is compared with AlexNet's all-severity
average and comes out too low, a subset of strong ones too high).

The 4 extra corruptions (speckle_noise, gaussian_blur, spatter, saturate) have no AlexNet
baseline in SPEC §5: report their raw errors, they have no CE and are never part of mCE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: AlexNet's top-1 error on ImageNet-C per corruption, mean over severities 1-5, in SPEC §5
#: order (the 15 benchmark corruptions; from Hendrycks & Dietterich's published results).
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}

#: AlexNet's clean top-1 error on the ImageNet validation set (Resize(256) + CenterCrop(224)).
#: Hendrycks & Dietterich evaluate torchvision's ``alexnet-owt-4df8aa71.pth`` checkpoint
#: (ImageNet-C/test.py), whose documented top-1 accuracy is 56.522 % -> 0.43478; the paper
#: prints it rounded as 43.5 %.
ALEXNET_CLEAN_ERROR = 0.43478

#: The 4 extra corruptions (same names as :mod:`cliprobe.manipulations.corruptions`): no CE.
EXTRAS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def _checked_errors(errors_by_severity: Mapping[int, float], what: str) -> dict[int, float]:
    """The errors as {severity: float}, after checking severities and ranges."""
    if not errors_by_severity:
        raise ValueError(f"{what}: no severities given")
    checked: dict[int, float] = {}
    for severity, error in errors_by_severity.items():
        if isinstance(severity, bool) or severity not in SEVERITIES:
            raise ValueError(f"{what}: severity {severity!r} is not one of {SEVERITIES}")
        value = float(error)
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ValueError(
                f"{what}: error {error!r} at severity {severity} is not a fraction in [0, 1]"
            )
        checked[severity] = value
    return checked


def _alexnet_mean(corruption: str) -> float:
    try:
        return ALEXNET_ERRORS[corruption]
    except KeyError:
        raise ValueError(
            f"no AlexNet baseline for corruption {corruption!r} (only the 15 of SPEC §5: "
            f"{', '.join(ALEXNET_ERRORS)}); report its unnormalised error instead"
        ) from None


def _checked_clean(clean_error: float, what: str) -> float:
    value = float(clean_error)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what}: clean error {clean_error!r} is not a fraction in [0, 1]")
    return value


def corruption_error(errors_by_severity: Mapping[int, float], corruption: str) -> float:
    """CE_c = Σ_s E_{s,c} / (n × AlexNet's mean error on c), n = severities present.

    ``errors_by_severity`` maps severity (1-5) to the model's top-1 error fraction. With all
    five severities this is the paper's CE; with fewer it is the approximation described in the
    module docstring. 1.0 means "as bad as AlexNet".
    """
    errors = _checked_errors(errors_by_severity, corruption)
    return sum(errors.values()) / (len(errors) * _alexnet_mean(corruption))


def relative_corruption_error(
    errors_by_severity: Mapping[int, float],
    clean_error: float,
    corruption: str,
    alexnet_clean_error: float = ALEXNET_CLEAN_ERROR,
) -> float:
    """Relative CE_c = Σ_s (E_{s,c} − E_clean) / (n × (AlexNet mean on c − AlexNet clean)).

    ``clean_error`` is the model's own error on the uncorrupted images; n the number of
    severities present (as in :func:`corruption_error`). Can be negative when the model does
    better on corrupted images than on clean ones.
    """
    errors = _checked_errors(errors_by_severity, corruption)
    clean = _checked_clean(clean_error, corruption)
    baseline_gap = _alexnet_mean(corruption) - _checked_clean(alexnet_clean_error, "AlexNet")
    numerator = sum(error - clean for error in errors.values())
    return numerator / (len(errors) * baseline_gap)


def mean_corruption_error(
    ce_by_corruption: Mapping[str, float], *, allow_partial: bool = False
) -> float:
    """mCE (or relative mCE): the mean of per-corruption CEs over the 15 benchmark corruptions.

    Returns NaN when any of the 15 is missing, so a partial grid is never mistaken for the
    benchmark's number; ``allow_partial=True`` averages over the corruptions present instead
    (NaN when none is). Names outside the 15 (including the 4 extras) raise ``ValueError``.
    """
    unknown = [name for name in ce_by_corruption if name not in ALEXNET_ERRORS]
    if unknown:
        raise ValueError(
            f"not among the 15 ImageNet-C benchmark corruptions: {', '.join(map(str, unknown))}"
        )
    if not ce_by_corruption or (not allow_partial and len(ce_by_corruption) < len(ALEXNET_ERRORS)):
        return math.nan
    return sum(float(ce) for ce in ce_by_corruption.values()) / len(ce_by_corruption)


def corruption_summary(
    errors: Mapping[str, Mapping[int, float]], clean_error: float | None
) -> dict[str, Any]:
    """CE and relative CE per benchmark corruption, mCE and relative mCE, plus completeness.

    ``errors`` maps corruption name -> {severity: top-1 error fraction}; the 4 extras (no
    AlexNet baseline) are skipped, any other unknown name raises ``ValueError``.
    ``clean_error`` is the model's error on the clean images *made the same way* (the same
    construction as the corrupted ones); None leaves the relative numbers empty ({} and NaN).

    Keys: ``ce``, ``relative_ce`` (dicts in SPEC §5 order), ``mce``, ``relative_mce`` (NaN
    unless all 15 are present), ``mce_over_present``, ``relative_mce_over_present`` (mean over
    the corruptions present), ``corruptions_present`` (count), ``complete`` (all 15
    corruptions at all 5 severities, i.e. the numbers are the paper's).
    """
    unknown = [name for name in errors if name not in ALEXNET_ERRORS and name not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown ImageNet-C corruptions: {', '.join(map(str, unknown))}")
    present = [name for name in ALEXNET_ERRORS if name in errors]
    ce = {name: corruption_error(errors[name], name) for name in present}
    relative = ({} if clean_error is None else {
        name: relative_corruption_error(errors[name], clean_error, name) for name in present
    })
    complete = len(present) == len(ALEXNET_ERRORS) and all(
        set(errors[name]) == set(SEVERITIES) for name in present
    )
    return {
        "ce": ce,
        "relative_ce": relative,
        "mce": mean_corruption_error(ce),
        "relative_mce": mean_corruption_error(relative) if relative else math.nan,
        "mce_over_present": mean_corruption_error(ce, allow_partial=True),
        "relative_mce_over_present": (mean_corruption_error(relative, allow_partial=True)
                                      if relative else math.nan),
        "corruptions_present": len(present),
        "complete": complete,
    }
