"""Shared fixtures: the repository root, the shared data folder, a smoke model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def isolated_download_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Downloads and caches of every test (and of the DVC stages they run) go to a temporary
    folder, never the user's cache; tests that check the default unset it themselves."""
    previous = os.environ.get("CLIPROBE_DATA_CACHE")
    cache = tmp_path_factory.mktemp("cliprobe-cache")
    os.environ["CLIPROBE_DATA_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("CLIPROBE_DATA_CACHE", None)
    else:
        os.environ["CLIPROBE_DATA_CACHE"] = previous


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow (end-to-end) tests first: when `make test` spreads files over workers
    (pytest-xdist, ``--dist loadfile``), the longest files start at once instead of last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def private_workers() -> Iterator[Path]:
    """Warm workers the tests start live in a folder of this session and stop with it."""
    import os
    import shutil
    import tempfile

    from cliprobe.worker.control import stop_workers
    from cliprobe.worker.identity import DIR_ENV

    folder = Path(tempfile.mkdtemp(prefix="cliprobe-w-"))  # short: a socket path's limit
    previous = os.environ.get(DIR_ENV)
    os.environ[DIR_ENV] = str(folder)
    yield folder
    stop_workers(folder)
    if previous is None:
        os.environ.pop(DIR_ENV, None)
    else:
        os.environ[DIR_ENV] = previous
    shutil.rmtree(folder, ignore_errors=True)
