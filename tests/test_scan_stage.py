"""The scan stage: a listing of each dataset's local inputs that changes exactly when they do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cliprobe.stages import scan


def params(tmp_path: Path, folder: Path) -> Path:
    file = tmp_path / "params.yaml"
    file.write_text(yaml.safe_dump({"dataset": {
        "sample": {"source": {"kind": "sample"}},
        "mine": {"source": {"kind": "image_folder", "path": str(folder)}},
    }}))
    return file


def test_the_listing_changes_exactly_when_a_photo_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "photos"
    for name in ("cat/1.jpg", "cat/2.jpg", "dog/1.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    file = params(tmp_path, folder)
    listing = tmp_path / "data" / "inputs" / "mine.json"

    scan.main(["--params", str(file)])
    first = listing.read_bytes()
    files = json.loads(first)["inputs"]["source.path"]["files"]
    assert [row[0] for row in files] == ["cat/1.jpg", "cat/2.jpg", "dog/1.jpg"]
    assert json.loads((tmp_path / "data" / "inputs" / "sample.json").read_text()) == {
        "dataset": "sample", "inputs": {}}
    assert "3 files, 3 read" in capsys.readouterr().err

    scan.main(["--params", str(file)])  # nothing changed: same bytes, no file read
    assert listing.read_bytes() == first
    assert "3 files, 0 read" in capsys.readouterr().err

    (folder / "cat" / "2.jpg").write_bytes(b"another photo")  # replaced under its name
    scan.main(["--params", str(file)])
    changed = json.loads(listing.read_bytes())["inputs"]["source.path"]["files"]
    assert [a == b for a, b in zip(files, changed, strict=True)] == [True, False, True]

    (folder / "dog" / "1.jpg").unlink()
    scan.main(["--params", str(file)])
    assert len(json.loads(listing.read_bytes())["inputs"]["source.path"]["files"]) == 2


def test_listings_of_datasets_no_longer_selected_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scan.main(["--params", str(params(tmp_path, tmp_path))])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"dataset": {"sample": {"source": {"kind": "sample"}}}}))
    scan.main(["--params", str(tmp_path / "params.yaml")])
    assert sorted(p.name for p in (tmp_path / "data" / "inputs").iterdir()) == ["sample.json"]


def test_a_bad_dataset_config_names_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"dataset": {"mine": {"source": {"kind": "image_folder"}}}}))
    with pytest.raises(SystemExit) as exited:
        scan.main(["--params", str(tmp_path / "params.yaml")])
    assert exited.value.code == 2
    assert "dataset.mine.source.image_folder.path" in capsys.readouterr().err
