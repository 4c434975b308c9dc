"""The ``oxford_paris`` source on a tiny Oxford layout built by the test: images, a ground-truth
pickle pinned by its sha256 (and a .mat twin), the restricted unpickler, and the fetch stage."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from dataset_helpers import Server, make_tar_gz, png_bytes, sha256

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.manifest import read_manifest
from cliprobe.datasets.sources import materialise
from cliprobe.datasets.sources.oxford_paris import load_pinned_pickle
from cliprobe.errors import DataError

GALLERY = ["all_souls_000001", "all_souls_000002", "balliol_000001", "oxford_000001",
           "radcliffe_camera_000003"]
QUERIES = ["all_souls_000013", "balliol_000010"]
GND = [
    {"bbx": [10.0, 20.0, 30.5, 40.0], "easy": [0], "hard": [1], "junk": [3]},
    {"bbx": np.array([1.0, 2.0, 3.0, 4.0]), "easy": np.array([2]), "hard": np.array([], int),
     "junk": []},
]


def _truth() -> dict[str, object]:
    return {"imlist": GALLERY, "qimlist": QUERIES, "gnd": GND}


def _images() -> dict[str, bytes]:
    return {f"oxbuild_images/{name}.jpg": png_bytes(i)
            for i, name in enumerate([*GALLERY, *QUERIES])}


def _config(**source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {"kind": "oxford_paris", **source}})


@pytest.fixture
def oxford(http_server: Server) -> dict[str, object]:
    """The archive and the pickled ground truth on the server, with their checksums."""
    archive = make_tar_gz(http_server.root / "oxbuild_images-v1.tgz", _images())
    gnd = pickle.dumps(_truth(), protocol=4)
    (http_server.root / "gnd_roxford5k.pkl").write_bytes(gnd)
    return {"images": [{"url": f"{http_server.url}/oxbuild_images-v1.tgz",
                        "sha256": sha256(archive.read_bytes())}],
            "gnd": {"url": f"{http_server.url}/gnd_roxford5k.pkl", "sha256": sha256(gnd)}}


def test_gallery_and_query_rows_carry_the_protocols(oxford: dict, tmp_path: Path) -> None:
    rows, info = materialise(_config(**oxford, cache_dir=str(tmp_path / "cache"), timeout=5),
                             "roxford5k", tmp_path / "raw")
    assert rows["split"].value_counts().to_dict() == {"gallery": 5, "query": 2}
    assert sorted(rows["label"].unique()) == ["all_souls", "balliol", "oxford",
                                              "radcliffe_camera"]
    query = rows.set_index("image_id").loc["query/all_souls_000013.jpg"]
    assert json.loads(query["query_box"]) == [10.0, 20.0, 30.5, 40.0]
    assert json.loads(query["gnd_easy"]) == ["gallery/all_souls_000001.jpg"]
    assert json.loads(query["gnd_hard"]) == ["gallery/all_souls_000002.jpg"]
    assert json.loads(query["gnd_junk"]) == ["gallery/oxford_000001.jpg"]
    second = rows.set_index("image_id").loc["query/balliol_000010.jpg"]
    assert json.loads(second["gnd_hard"]) == [] and json.loads(second["gnd_junk"]) == []
    assert rows.set_index("image_id").loc["gallery/balliol_000001.jpg", "gnd_index"] == 2
    assert (tmp_path / "raw" / "gallery" / "oxford_000001.jpg").is_file()
    assert len(info["checksums"]) == 2 and all("(pinned)" in c for c in info["checksums"])


def test_a_pickle_whose_checksum_differs_is_never_unpickled(oxford: dict, tmp_path: Path,
                                                            http_server: Server) -> None:
    evil = pickle.dumps({"imlist": [], "qimlist": [], "gnd": []}) + b"trailing"
    (http_server.root / "gnd_roxford5k.pkl").write_bytes(evil)
    with pytest.raises(DataError, match="does not match its pinned checksum"):
        materialise(_config(**oxford, cache_dir=str(tmp_path / "cache"), timeout=5, retries=1),
                    "roxford5k", tmp_path / "raw")


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_the_restricted_unpickler_refuses_globals_even_when_pinned(tmp_path: Path) -> None:
    payload = pickle.dumps({"imlist": [], "qimlist": [], "gnd": [_Exploit()]})
    path = tmp_path / "gnd_evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=r"not a plain ground-truth pickle .*system"):
        load_pinned_pickle(path, sha256(payload), "evil")
    with pytest.raises(DataError, match="will not unpickle"):
        load_pinned_pickle(path, "0" * 64, "evil")
    arrays = pickle.dumps({"a": np.arange(3), "b": [np.float64(1.5)]})
    path.write_bytes(arrays)
    loaded = load_pinned_pickle(path, sha256(arrays), "ok")
    assert loaded["a"].tolist() == [0, 1, 2]


def test_the_schema_refuses_an_unpinned_pickle() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"pinned gnd\.sha256"):
        _config(images=[{"url": "https://x/a.tgz"}], gnd={"url": "https://x/gnd_x.pkl"})


def test_the_mat_ground_truth_and_a_local_copy(tmp_path: Path) -> None:
    from scipy.io import savemat

    folder = tmp_path / "oxford"
    for name, data in _images().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    record = np.dtype([("bbx", object), ("easy", object), ("hard", object), ("junk", object)])
    gnd = np.zeros((1, len(GND)), dtype=record)
    for i, entry in enumerate(GND):  # MATLAB's 1-based indices
        gnd[0, i] = (np.asarray(entry["bbx"], float).reshape(1, 4),
                     np.asarray(entry["easy"], float).reshape(1, -1) + 1,
                     np.asarray(entry["hard"], float).reshape(1, -1) + 1,
                     np.asarray(entry["junk"], float).reshape(1, -1) + 1)
    cells = {key: np.array([[n] for n in names], dtype=object)
             for key, names in (("imlist", GALLERY), ("qimlist", QUERIES))}
    savemat(folder / "gnd_roxford5k.mat", {**cells, "gnd": gnd})
    rows, _ = materialise(_config(images=[{"url": "https://x/oxbuild_images-v1.tgz"}],
                                  gnd={"url": "https://x/gnd_roxford5k.mat"},
                                  local_dir=str(folder)), "roxford5k", tmp_path / "raw")
    query = rows.set_index("image_id").loc["query/all_souls_000013.jpg"]
    assert json.loads(query["gnd_junk"]) == ["gallery/oxford_000001.jpg"]
    assert json.loads(query["query_box"]) == [10.0, 20.0, 30.5, 40.0]
    (folder / "oxbuild_images" / "balliol_000001.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of the 7 images .*balliol_000001"):
        materialise(_config(images=[{"url": "https://x/a.tgz"}],
                            gnd={"url": "https://x/gnd_roxford5k.mat"}, local_dir=str(folder)),
                    "roxford5k", tmp_path / "raw2")


def test_the_fetch_stage_subsamples_and_writes_a_uniform_manifest(
        oxford: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cliprobe.stages import fetch

    params = {
        "model": {"smoke": {"arch": "cliprobe-smoke", "pretrained": None,
                            "random_init_seed": 0}},
        "dataset": {"roxford5k": {
            "source": {"kind": "oxford_paris", **oxford, "cache_dir": str(tmp_path / "cache"),
                       "timeout": 5},
            "subsample": {"classes": 2, "per_class": None, "seed": 3},
            "license": "research use", "version": "test"}},
    }
    work = tmp_path / "project"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(work)
    fetch.main(["--dataset", "roxford5k"])
    manifest, info = read_manifest(work / "data" / "manifests" / "roxford5k.parquet")
    assert list(manifest.columns[:5]) == ["image_id", "path", "label", "class_index", "split"]
    assert {"query_box", "gnd_easy", "gnd_hard", "gnd_junk", "gnd_index"} <= set(manifest)
    assert manifest["label"].nunique() == 2 and set(manifest["split"]) <= {"gallery", "query"}
    on_disk = sorted(p.relative_to(work / "data" / "raw" / "roxford5k").as_posix()
                     for p in (work / "data" / "raw" / "roxford5k").rglob("*") if p.is_file())
    assert on_disk == sorted(manifest["path"])
    assert info["license"] == "research use" and info["subsample"]["classes"] == 2
    # the content of every image, what the embedding stages depend on and key chunks by
    raw = work / "data" / "raw" / "roxford5k"
    assert list(manifest["sha256"]) == [hashlib.sha256((raw / p).read_bytes()).hexdigest()
                                        for p in manifest["path"]]
