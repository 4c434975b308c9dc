"""The generated ImageNet-C sweep preset (conf/experiment/imagenet_c_sweep.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cliprobe.config.compose import compose_params
from cliprobe.config.loading import validate_params
from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, registry_name
from cliprobe.manipulations.sweeps import (
    IMAGENET_C_SWEEP_PATH,
    imagenet_c_sweep,
    render_imagenet_c_sweep,
)

REPO = Path(__file__).resolve().parents[2]


def test_committed_preset_equals_the_generator_output() -> None:
    committed = (REPO / IMAGENET_C_SWEEP_PATH).read_text()
    assert committed == render_imagenet_c_sweep(), (
        "regenerate it: python -m cliprobe.manipulations.sweeps > " + IMAGENET_C_SWEEP_PATH
    )
    parsed = yaml.safe_load(committed)
    assert parsed["manipulation"] == imagenet_c_sweep()
    assert parsed["defaults"] == [{"override /manipulation": []}]


def test_sweep_has_95_cells_named_corruption_severity() -> None:
    sweep = imagenet_c_sweep()
    assert len(sweep) == 95
    assert list(sweep)[:2] == ["gaussian_noise_s1", "gaussian_noise_s2"]
    assert sweep["saturate_s5"] == {
        "function": registry_name("saturate"),
        "severity": 5,
        "construction": "imagenet_c",
    }
    assert {cell["function"] for cell in sweep.values()} == {
        registry_name(c) for c in ALL_CORRUPTIONS
    }


def test_preset_replaces_the_default_selection_and_validates() -> None:
    raw = compose_params(REPO / "conf", ["+experiment=imagenet_c_sweep", "model=smoke"])
    assert raw["manipulation"] == imagenet_c_sweep()  # blurred/cropped/grey are gone
    params = validate_params(raw)
    assert len(params.manipulation) == 95
