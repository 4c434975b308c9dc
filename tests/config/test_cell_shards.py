"""The cells' stages spread over pipelines/cells-*/dvc.yaml (cliprobe.config.cell_shards)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cliprobe.config.cell_shards import (
    N_SHARDS,
    PIPELINES_DIR,
    cell_shards,
    prune_root_lock,
    shard_of,
    shard_pipeline,
    shard_pipeline_path,
)
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.config.loading import load_params
from cliprobe.errors import ConfigError


def test_the_committed_sub_pipelines_are_the_generated_ones(repo: Path) -> None:
    for index in range(N_SHARDS):
        assert (repo / shard_pipeline_path(index)).read_text() == shard_pipeline(index), (
            f"{shard_pipeline_path(index)} is stale: run `python -m cliprobe.config.cell_shards`")
    folders = {p.name for p in (repo / PIPELINES_DIR).iterdir() if p.is_dir()}
    assert folders == {shard_pipeline_path(i).parent.name for i in range(N_SHARDS)}


def test_each_manipulation_is_in_one_shard_that_no_other_name_changes(repo: Path) -> None:
    params = compose_params(repo / "conf", ["+experiment=imagenet_c_sweep"])
    shards = params["cell_shards"]
    listed = [name for names in shards.values() for name in names]
    assert sorted(listed) == sorted(params["manipulation"])  # each exactly once
    assert max(len(names) for names in shards.values()) <= 12  # 95 cells, no crowded file
    fewer = cell_shards([*list(params["manipulation"])[::2], "my_own_blur"])
    for key, names in fewer.items():
        assert all(shard_of(name) == key for name in names)
        assert set(names) - {"my_own_blur"} <= set(shards[key])


def test_a_params_yaml_whose_shards_miss_a_cell_is_refused(repo: Path, tmp_path: Path) -> None:
    params = compose_params(repo / "conf", ["manipulation=[blurred,grey]"])
    file = tmp_path / "params.yaml"
    file.write_text(to_yaml(params))
    load_params(file)
    params["manipulation"]["cropped"] = compose_params(
        repo / "conf", ["manipulation=[cropped]"])["manipulation"]["cropped"]
    file.write_text(to_yaml(params))  # by hand: cropped is in no shard, so DVC has no stage
    with pytest.raises(ConfigError, match=r"params.yaml: cell_shards does not match .* compose"):
        load_params(file)


def test_dvcs_own_composition_fills_the_shards_through_the_hydra_plugin(
        repo: Path, tmp_path: Path) -> None:
    # a fresh process, as `dvc exp run`: nothing but DVC's compose registers the resolver
    script = (
        "import json, sys\n"
        "from dvc.utils.hydra import compose_and_dump\n"
        "compose_and_dump(sys.argv[1], sys.argv[2], None, 'config', sys.argv[3],\n"
        "                 ['manipulation=[blurred,grey]'])\n"
    )
    out = tmp_path / "params.json"
    subprocess.run([sys.executable, "-c", script, str(out), str(repo / "conf"), str(repo)],
                   check=True, cwd=tmp_path, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    composed = json.loads(out.read_text())
    assert composed["cell_shards"] == cell_shards(["blurred", "grey"])


def test_a_lock_from_before_the_sub_pipelines_loses_only_the_cells_entries(
        repo: Path, tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text((repo / "dvc.yaml").read_text())
    entry = "    cmd: python -m cliprobe.stages x\n"
    names = ["scan", "embed@smoke-sample", "manipulate@smoke-sample-grey",
             "score_original@smoke-sample", "score@smoke-sample-grey", "aggregate"]
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n" + "".join(f"  {name}:\n{entry}" for name in names))
    assert prune_root_lock(tmp_path) == ["manipulate@smoke-sample-grey",
                                         "score@smoke-sample-grey"]
    kept = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]
    assert list(kept) == ["scan", "embed@smoke-sample", "score_original@smoke-sample",
                          "aggregate"]
    assert prune_root_lock(tmp_path) == []
