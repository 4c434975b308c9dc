"""The params schema, Hydra composition and the committed params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliprobe.config.cell_shards import stage_definitions
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.config.loading import validate_params
from cliprobe.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_committed_params_equal_the_composition_of_conf(repo: Path) -> None:
    assert (repo / "params.yaml").read_text() == to_yaml(compose_params(CONF))


@pytest.mark.parametrize("group", ["model", "dataset", "manipulation"])
def test_every_config_file_composes_and_validates(group: str) -> None:
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        params = validate_params(compose_params(CONF, [f"{group}=[{option}]"]))
        assert option in getattr(params, group)


def test_unknown_group_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as error:
        compose_params(CONF, ["model=ViT-X-99"])
    message = str(error.value)
    assert "ViT-X-99" in message and "ViT-B-32" in message and "smoke" in message


def _default() -> dict:
    return compose_params(CONF, ["model=smoke"])


@pytest.mark.parametrize(
    ("override", "key_path"),
    [
        ("manipulation.blurred.sigma=-1", "manipulation.blurred.sigma"),
        ("manipulation.cropped.side_fraction=1.5", "manipulation.cropped.side_fraction"),
        ("retrieval.neighbours=0", "retrieval.neighbours"),
        ("retrieval.threshold=-0.5", "retrieval.threshold"),
        ("stats.confidence=1.5", "stats.confidence"),
        ("embed.batch_size=0", "embed.batch_size"),
        ("+manipulation.grey.strength=2", "manipulation.grey.strength"),
        ("manipulation.grey.function=sepia", "manipulation.grey.function"),
        ("+model.smoke.colour=red", "model.smoke.colour"),
        ("saliency.cells=[blurred,sepia]", "saliency.cells.1"),
        ("saliency.methods=[gradcam,lime]", "saliency.methods"),
        ("saliency.occlusion.fill=sky", "saliency.occlusion.fill"),
        ("saliency.occlusion.window=0", "saliency.occlusion.window"),
        ("proximity.wordnet.senses=all", "proximity.wordnet.senses"),
    ],
)
def test_out_of_range_values_name_their_key_path(override: str, key_path: str) -> None:
    raw = compose_params(CONF, ["model=smoke", override])
    with pytest.raises(ConfigError) as error:
        validate_params(raw)
    assert key_path in str(error.value)


def test_saliency_cells_may_name_original_and_selected_manipulations() -> None:
    raw = compose_params(CONF, ["model=smoke", "saliency.cells=[original,grey]"])
    assert validate_params(raw).saliency.cells == ["original", "grey"]


def test_unknown_manipulation_function_lists_valid_functions() -> None:
    raw = compose_params(CONF, ["model=smoke", "manipulation.grey.function=sepia"])
    with pytest.raises(ConfigError, match="gaussian_blur"):
        validate_params(raw)


def test_random_weights_need_a_seed() -> None:
    raw = _default()
    raw["model"]["smoke"]["random_init_seed"] = None
    with pytest.raises(ConfigError, match=r"model\.smoke"):
        validate_params(raw)


def test_original_cannot_be_selected_as_a_manipulation() -> None:
    raw = _default()
    raw["manipulation"]["original"] = {"function": "identity"}
    with pytest.raises(ConfigError, match="original"):
        validate_params(raw)


def test_names_with_dots_are_rejected() -> None:
    raw = _default()
    raw["dataset"]["my.data"] = raw["dataset"]["sample"]
    with pytest.raises(ConfigError, match="slug"):
        validate_params(raw)


def test_model_override_narrows_the_grid_and_plus_adds() -> None:
    assert list(compose_params(CONF, ["model=RN50"])["model"]) == ["RN50"]
    assert set(compose_params(CONF, ["+model=RN50"])["model"]) == {"ViT-B-32", "RN50"}


def test_conf_holds_no_machine_or_time_dependent_interpolation() -> None:
    for file in CONF.rglob("*.yaml"):
        text = file.read_text()
        for banned in ("${hydra:", "${now:", "${oc.env:"):
            assert banned not in text, f"{file} uses {banned} (breaks DVC caching)"


def test_dvc_yaml_paths_match_paths_module(repo: Path) -> None:
    from cliprobe import paths

    stages = stage_definitions(repo)
    item = {"${item.model}": "M", "${item.dataset}": "D", "${item.manipulation}": "X"}

    def fill(text: str) -> str:
        for key, value in item.items():
            text = text.replace(key, value)
        return text

    assert fill(stages["fetch"]["outs"][1]) == paths.manifest_path("D").as_posix()
    assert fill(stages["fetch"]["outs"][2]) == paths.captions_path("D").as_posix()
    assert (fill(stages["captions"]["outs"][0])
            == paths.caption_embeddings_path("M", "D").as_posix())
    clean = paths.embeddings_path("M", "D", "original").as_posix()
    assert fill(stages["embed"]["outs"][0]) == clean
    assert fill(stages["manipulate"]["outs"][0]) == paths.embeddings_path("M", "D", "X").as_posix()
    assert fill(stages["score"]["outs"][0]) == paths.cell_dir("M", "D", "X").as_posix()
    assert fill(stages["saliency"]["outs"][0]) == paths.saliency_dir("M", "D", "X").as_posix()
