"""A grid with no manipulation (clean cells only) is a valid pipeline."""

from __future__ import annotations

from pathlib import Path

import yaml

from cliprobe.config.cell_shards import N_SHARDS, shard_key, shard_pipeline_path
from cliprobe.config.compose import compose_params
from cliprobe.config.loading import validate_params


def test_no_manipulation_still_names_the_group(repo: Path) -> None:
    params = compose_params(repo / "conf", ["model=smoke", "manipulation=[]"])
    assert params["manipulation"] == {}
    validate_params(params)
    # the cells' matrices read ${cell_shards.<k>}: every key must exist, even when empty
    assert params["cell_shards"] == {shard_key(i): [] for i in range(N_SHARDS)}
    cells = yaml.safe_load((repo / shard_pipeline_path(0)).read_text())["stages"]
    assert cells["manipulate"]["matrix"]["manipulation"] == "${cell_shards.s00}"
