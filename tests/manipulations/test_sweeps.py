"""The generated ImageNet-C sweep preset (conf/experiment/imagenet_c_sweep.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cliprobe.config.compose import compose_params
from cliprobe.config.loading import validate_params
from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, registry_name
from cliprobe.manipulations.sweeps import (
    IMAGENET_C_RELEASED_PATH,
    IMAGENET_C_SWEEP_PATH,
    imagenet_c_released,
    imagenet_c_sweep,
    render_imagenet_c_sweep,
    render_preset,
)

REPO = Path(__file__).resolve().parents[2]


def test_committed_presets_equal_the_generator_output() -> None:
    committed = (REPO / IMAGENET_C_SWEEP_PATH).read_text()
    assert committed == render_imagenet_c_sweep(), (
        "regenerate them: python -m cliprobe.manipulations.sweeps")
    released = (REPO / IMAGENET_C_RELEASED_PATH).read_text()
    assert released == render_preset("released")
    assert yaml.safe_load(released)["manipulation"] == imagenet_c_released()
    parsed = yaml.safe_load(committed)
    assert parsed["manipulation"] == imagenet_c_sweep()
    assert parsed["defaults"] == [{"override /manipulation": []}]


def test_sweep_has_95_cells_named_corruption_severity_and_the_clean_reference() -> None:
    sweep = imagenet_c_sweep()
    assert len(sweep) == 96
    assert list(sweep)[:3] == ["imagenet_c_clean", "gaussian_noise_s1", "gaussian_noise_s2"]
    assert sweep["imagenet_c_clean"] == {"function": "imagenet_c_clean",
                                         "construction": "imagenet_c"}
    sweep = {name: cell for name, cell in sweep.items() if name != "imagenet_c_clean"}
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
    assert len(params.manipulation) == 96


def test_released_preset_reads_the_official_images() -> None:
    raw = compose_params(REPO / "conf", [
        "+experiment=imagenet_c_released", "model=smoke", "dataset=[imagenet_val]",
        "dataset.imagenet_val.source.local_dir=/data/val",
        "dataset.imagenet_val.source.imagenet_c={archive_dir: /data/imagenet-c}"])
    params = validate_params(raw)
    assert len(params.manipulation) == 76  # 15 corruptions x 5 severities + clean reference
    assert raw["manipulation"]["released_fog_s3"] == {
        "function": "imagenet_c_released", "corruption": "fog", "severity": 3}
    assert params.dataset["imagenet_val"].source.imagenet_c.archive_dir == "/data/imagenet-c"
