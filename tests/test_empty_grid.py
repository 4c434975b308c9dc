"""A grid with no manipulation (clean cells only) is a valid pipeline."""

from __future__ import annotations

from pathlib import Path

import yaml

from cliprobe.config.compose import compose_params
from cliprobe.config.loading import validate_params


def test_no_manipulation_still_names_the_group(repo: Path) -> None:
    params = compose_params(repo / "conf", ["model=smoke", "manipulation=[]"])
    assert params["manipulation"] == {}
    validate_params(params)
    # dvc.yaml's matrix reads ${manipulation}: the key must exist even when empty
    assert "${manipulation}" in yaml.safe_load((repo / "dvc.yaml").read_text()).__repr__()
