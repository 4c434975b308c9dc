"""Shared fixtures: the repository root, the shared data folder, a smoke model."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real labelled photos); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_model():
    """The seeded random-weight smoke model on CPU."""
    from cliprobe.config.schema import ModelConfig
    from cliprobe.models import load_model

    config = ModelConfig(arch="cliprobe-smoke", pretrained=None, random_init_seed=0)
    return load_model("smoke", config, "cpu")
