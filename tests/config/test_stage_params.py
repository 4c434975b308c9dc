"""Each stage reads, and depends on, exactly its own spec (cliprobe.config.stage_params)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliprobe.config.cell_shards import stage_definitions
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.config.loading import validate_params
from cliprobe.config.stage_params import (
    EXECUTION_FILE,
    SPLIT_DIR,
    STAGES,
    dependency_path,
    load_stage_params,
    read_params,
    spec_path,
    split,
    stage_mapping,
    write_split,
)
from cliprobe.errors import ConfigError
from cliprobe.worker import client

BASE = ["model=[smoke,ViT-B-32-rmac]", "manipulation=[blurred,fog]"]
CELL = {"model": "smoke", "dataset": "sample", "manipulation": "blurred"}


def _params(repo: Path, overrides: list[str]):  # type: ignore[no-untyped-def]
    return validate_params(compose_params(repo / "conf", overrides))


def _specs(repo: Path, overrides: list[str]) -> dict[str, dict]:
    """Every stage's params for CELL (what its spec holds, code aside)."""
    params = _params(repo, ["model=smoke", "manipulation=[blurred]", *overrides])
    return {stage: stage_mapping(params, stage, **CELL) for stage in STAGES}


def test_dvc_yaml_declares_what_each_stage_reads_and_runs(repo: Path) -> None:
    stages = stage_definitions(repo)  # dvc.yaml's and the cells' (pipelines/cells-*/dvc.yaml)
    assert set(STAGES) | {"split_params", "scan"} == set(stages)
    assert stages.pop("scan")["always_changed"]  # reads only the dataset section, always runs
    split_stage = stages.pop("split_params")
    assert "params" not in split_stage and "params.yaml" in split_stage["deps"]
    code = {path for spec in STAGES.values() for path in spec.code}
    for path in code:  # every stage's code is a dependency of the specs that fingerprint it
        assert any(path == d or path.startswith(f"{d}/") for d in split_stage["deps"]), path
    for name, stage in stages.items():
        assert "params" not in stage, f"{name} declares params.yaml params"
        spec = dependency_path(name)
        assert [d for d in stage["deps"] if d.startswith(f"{SPLIT_DIR.as_posix()}/")] == [spec]
        assert not [d for d in stage["deps"] if d.startswith("src/")], name  # code: the spec
        assert stage["cmd"].startswith("python -m cliprobe.stages ")
        assert f"--params {spec} " in f"{stage['cmd']} ", name
        axes = [a for a in ("model", "dataset", "manipulation") if a in stage.get("matrix", {})]
        assert tuple(axes) == STAGES[name].axes, name


def test_the_worker_client_reads_the_split_the_stages_read() -> None:
    assert client.EXECUTION_FILE == EXECUTION_FILE


def test_settings_that_cannot_change_a_score_leave_every_spec_alone(repo: Path) -> None:
    default = _specs(repo, [])
    for override in ("retrieval.remote.timeout_s=5", "retrieval.remote.retries=0",
                     "retrieval.remote.cache_dir=elsewhere", "retrieval.index.nlist=7",
                     "retrieval.index.efSearch=3", "retrieval.pca.n_components=9",
                     "retrieval.kmeans.k=3", "retrieval.remote.url=http://x",
                     "embed.batch_size=3", "embed.worker=false", "saliency.batch_size=2"):
        assert _specs(repo, [override]) == default, override


@pytest.mark.parametrize("override, stages", [
    # the seed 001 table's legend (aggregate) states N, t and the own-image choice
    ("retrieval.neighbours=5", {"score", "score_original", "aggregate", "report"}),
    ("retrieval.seed001_own_image=include", {"score", "score_original", "aggregate",
                                             "report"}),
    ("retrieval.index.kind=faiss_ivf", {"score", "score_original", "report"}),
    ("retrieval.pca.enabled=true", {"score", "score_original", "report"}),
    ("stats.confidence=0.9", {"score", "score_original", "saliency", "aggregate", "words",
                              "report"}),
    ("zeroshot.probe_test_fraction=0.5", {"score_original"}),
    ("manipulation.blurred.sigma=1.5", {"manipulate", "saliency", "plot"}),
    ("seed=3", {"manipulate", "score", "score_original", "saliency", "aggregate", "words",
                "plot", "report"}),
    ("model.smoke.precision=bf16", {"embed", "manipulate", "classifier", "captions", "score",
                                    "score_original", "saliency"}),
    ("prompts=this_is", {"classifier"}),
    ("zeroshot.word_query='a sign saying {}'", {"classifier"}),
    ("zeroshot.class_names=labels", {"classifier"}),
    ("zeroshot.classes=present", {"classifier"}),
    ("+dataset.sample.prompts=clip_cifar10", {"fetch", "classifier"}),
    ("saliency.map_side=28", {"saliency"}),
    ("saliency.cells=[blurred]", {"words", "plot"}),
    ("proximity.wordnet.senses=first", {"words"}),
])
def test_settings_that_can_change_outputs_change_exactly_their_stages(
        repo: Path, override: str, stages: set[str]) -> None:
    default, changed = _specs(repo, []), _specs(repo, [override])
    assert {s for s in STAGES if changed[s] != default[s]} == stages


def test_the_official_probe_split_reaches_fetch_and_score_original_only(repo: Path) -> None:
    cell = {**CELL, "dataset": "cifar10"}

    def specs(overrides: list[str]) -> dict[str, dict]:
        params = _params(repo, ["model=smoke", "manipulation=[blurred]", "dataset=[cifar10]",
                                *overrides])
        return {stage: stage_mapping(params, stage, **cell) for stage in STAGES}

    default = specs([])
    assert default["score_original"]["probe_train"]["split"] == "train"
    changed = specs(["dataset.cifar10.probe_train.per_class=5"])
    assert {s for s in STAGES if changed[s] != default[s]} == {"fetch", "score_original"}
    off = specs(["dataset.cifar10.probe_train=null"])
    assert off["score_original"]["probe_train"] is None


def test_parameters_of_the_chosen_backend_count(repo: Path) -> None:
    ivf = ["retrieval.index.kind=faiss_ivf"]
    assert (_specs(repo, [*ivf, "retrieval.index.nlist=7"])["score"]
            != _specs(repo, ivf)["score"])
    assert (_specs(repo, [*ivf, "retrieval.index.efSearch=3"])["score"]
            == _specs(repo, ivf)["score"])
    remote = ["retrieval.remote.enabled=true"]
    assert (_specs(repo, [*remote, "retrieval.remote.num_images=3"])["score"]
            != _specs(repo, remote)["score"])
    assert (_specs(repo, [*remote, "retrieval.remote.timeout_s=3"])["score"]
            == _specs(repo, remote)["score"])


def test_model_params_keep_only_what_the_variant_and_weights_use(repo: Path) -> None:
    params = _params(repo, BASE)
    rmac = stage_mapping(params, "embed", model="ViT-B-32-rmac")["model"]["ViT-B-32-rmac"]
    smoke = stage_mapping(params, "embed", model="smoke")["model"]["smoke"]
    assert "rmac_scales" in rmac and "multipatch_overlap" not in rmac
    assert "random_init_seed" not in rmac  # pretrained weights
    assert smoke["random_init_seed"] == 0 and "rmac_scales" not in smoke


def test_a_spec_holds_the_params_and_the_code_of_its_stage(repo: Path, tmp_path: Path) -> None:
    params = _params(repo, [*BASE, "saliency.cells=[fog]"])
    params_file = tmp_path / "params.yaml"
    params_file.write_text(to_yaml(params.model_dump(mode="json")))
    write_split(params, tmp_path / "split", root=repo)
    cell = {"model": "ViT-B-32-rmac", "dataset": "sample", "manipulation": "fog"}
    for stage in STAGES:
        spec = tmp_path / "split" / spec_path(stage, **cell)
        assert json.loads(spec.read_text())["code"]  # the code's fingerprint
        from_spec = load_stage_params(stage, spec, **cell)
        assert from_spec == load_stage_params(stage, tmp_path / "split", **cell), stage
        assert from_spec == load_stage_params(stage, params_file, **cell), stage
    score = read_params("score", tmp_path / "split", **cell)
    assert set(score) == {"model", "seed", "retrieval", "stats", "embed"}
    assert score["retrieval"]["remote"]["timeout_s"] == 30.0  # read (execution), not tracked
    plot = load_stage_params("plot", tmp_path / "split")
    assert plot.grid is not None and plot.grid.manipulation == ["blurred", "fog"]
    assert plot.manipulation["fog"].params == {"severity": 3, "construction": "imagenet_c",
                                               "encoding": "imagenet_c_jpeg"}
    # a code change reaches exactly the specs of the stages that run that code
    before = split(params, repo)
    copy = tmp_path / "copy"
    for path in {p for s in STAGES.values() for p in s.code}:
        source, target = repo / path, copy / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            target.write_bytes(source.read_bytes())
        else:
            import shutil

            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"),
                            dirs_exist_ok=True)
    assert split(params, copy) == before
    with (copy / "src/cliprobe/stages/score.py").open("a") as handle:
        handle.write("\n# a comment\n")
    after = split(params, copy)
    changed = {path.parts[0] for path in before if before[path] != after[path]}
    assert changed == {"score", "score_original"}


def test_a_missing_spec_is_one_sentence(repo: Path, tmp_path: Path) -> None:
    write_split(_params(repo, BASE), tmp_path / "split", root=repo)
    with pytest.raises(ConfigError, match=r"model 'RN50'.*not selected"):
        load_stage_params("embed", tmp_path / "split", model="RN50", dataset="sample",
                          manipulation="original")
