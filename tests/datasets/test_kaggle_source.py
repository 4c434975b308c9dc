"""The ``kaggle`` source: a Kaggle-layout folder, missing credentials, and the API download path
(the ``kaggle`` package replaced by a stand-in that writes a zip built by the test)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from dataset_helpers import make_zip, png_bytes

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.sources import kaggle as kaggle_source
from cliprobe.datasets.sources import materialise
from cliprobe.errors import DataError

PLAYERS = ["Adams, Steven", "Bacon, Dwayne", "Curry, Stephen"]
REF = "djjerrish/nba-player-image-dataset-201920"


def _kaggle_files() -> dict[str, bytes]:
    files = {f"NBA Players/{player}/{i}.jpg": png_bytes(20 * n + i)
             for n, player in enumerate(PLAYERS) for i in range(3)}
    files["NBA Players/players.csv"] = b"name\n"
    return files


def _config(**source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {"kind": "kaggle", "dataset": REF, **source}})


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home without ~/.kaggle and no Kaggle environment variables."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_a_kaggle_layout_folder_via_local_dir(tmp_path: Path) -> None:
    folder = tmp_path / "nba"
    for name, data in _kaggle_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    rows, info = materialise(_config(local_dir=str(folder)), "nba", tmp_path / "raw")
    assert sorted(rows["label"].unique()) == PLAYERS and len(rows) == 9
    assert rows["image_id"].iloc[0] == "Adams, Steven/0.jpg"
    assert info["source"] == f"https://www.kaggle.com/datasets/{REF}"


def test_missing_credentials_is_one_sentence(tmp_path: Path, no_credentials: None) -> None:
    with pytest.raises(DataError) as error:
        materialise(_config(cache_dir=str(tmp_path / "cache")), "nba", tmp_path / "raw")
    message = str(error.value)
    assert message.startswith(f"dataset 'nba' (Kaggle {REF}) needs Kaggle credentials")
    assert "kaggle.json" in message and "dataset.nba.source.local_dir" in message
    assert ". " not in message


def test_download_through_the_api_then_from_the_cache(tmp_path: Path, no_credentials: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    calls: list[tuple[str, str]] = []
    source_zip = make_zip(tmp_path / "made.zip", _kaggle_files())

    class FakeApi:
        def authenticate(self) -> None:
            print("kaggle chatter on stdout")

        def dataset_download_files(self, ref: str, path: str, quiet: bool, unzip: bool) -> None:
            calls.append((ref, path))
            Path(path, "nba-player-image-dataset-201920.zip").write_bytes(
                source_zip.read_bytes())

    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = FakeApi  # type: ignore[attr-defined]
    for name in ("kaggle", "kaggle.api"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", module)

    config = _config(cache_dir=str(tmp_path / "cache"), version=3)
    rows, info = materialise(config, "nba", tmp_path / "raw")
    assert calls == [(f"{REF}/3", str(tmp_path / "cache" / "kaggle" / "djjerrish"
                                      / "nba-player-image-dataset-201920" / "v3" / ".download"))]
    assert sorted(rows["label"].unique()) == PLAYERS
    assert info["source"].endswith("/versions/3") and "sha256:" in info["checksums"][0]
    again, _ = materialise(config, "nba", tmp_path / "raw2")
    assert len(calls) == 1 and again.equals(rows)  # cached zip: the API is not called again


def test_kaggle_credential_locations(tmp_path: Path, no_credentials: None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert kaggle_source.kaggle_credentials() is None
    token = tmp_path / "home" / ".kaggle" / "kaggle.json"
    token.parent.mkdir(parents=True)
    token.write_text('{"username": "u", "key": "k"}')
    assert kaggle_source.kaggle_credentials() == str(token)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t")
    assert kaggle_source.kaggle_credentials() == "KAGGLE_API_TOKEN"
