"""The ``imagenet`` source: class names, a WordNet-id folder, an index-folder archive (V2 layout)
served locally, and the val path from fake archives + devkit built by the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import Server, make_tar_gz, png_bytes, sha256

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.sources import imagenet, materialise
from cliprobe.errors import DataError


def _config(**source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {"kind": "imagenet", **source}})


def test_class_names_are_clip_s_and_unique() -> None:
    names, wnids = imagenet.imagenet_class_names(), imagenet.imagenet_wnids()
    assert len(names) == len(set(names)) == len(wnids) == 1000
    assert names[0] == "tench" and wnids[0] == "n01440764"
    assert {names[657], names[744], names[836], names[837]} == {
        "missile", "projectile", "sunglass", "sunglasses"}


def test_wnid_folders_via_local_dir(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet-r"
    for n, wnid in enumerate(["n01443537", "n01484850"]):
        for i in range(2):
            (folder / wnid).mkdir(parents=True, exist_ok=True)
            (folder / wnid / f"art_{i}.jpg").write_bytes(png_bytes(n * 5 + i))
    rows, info = materialise(_config(variant="r", local_dir=str(tmp_path)), "inr",
                             tmp_path / "raw")
    assert sorted(rows["label"].unique()) == ["goldfish", "great white shark"]
    assert sorted(rows["imagenet_index"].unique()) == [1, 2]
    assert rows["image_id"].iloc[0] == "n01443537/art_0.jpg" and "MIT" in info["license"]
    (folder / "not-a-wnid").mkdir()
    with pytest.raises(DataError, match="not an ImageNet WordNet id"):
        materialise(_config(variant="r", local_dir=str(tmp_path)), "inr", tmp_path / "raw2")


def test_an_index_folder_archive_is_downloaded_and_checked(http_server: Server,
                                                           tmp_path: Path) -> None:
    files = {f"imagenetv2-matched-frequency-format-val/{c}/{i}.jpeg": png_bytes(c * 3 + i)
             for c in (0, 999) for i in range(2)}
    archive = make_tar_gz(http_server.root / "v2.tar.gz", files)
    config = _config(variant="v2", url=f"{http_server.url}/v2.tar.gz",
                     sha256=sha256(archive.read_bytes()), cache_dir=str(tmp_path / "cache"),
                     timeout=5)
    rows, info = materialise(config, "inv2", tmp_path / "raw")
    assert sorted(rows["label"].unique()) == ["tench", "toilet paper"]
    assert "(pinned)" in info["checksums"][0]
    wrong = _config(variant="v2", url=f"{http_server.url}/v2.tar.gz", sha256="1" * 64,
                    cache_dir=str(tmp_path / "cache2"), timeout=5, retries=1)
    with pytest.raises(DataError, match="does not match its pinned checksum"):
        materialise(wrong, "inv2", tmp_path / "raw2")


def test_val_from_the_users_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.io import savemat

    archives = tmp_path / "ilsvrc"
    archives.mkdir()
    make_tar_gz(archives / "ILSVRC2012_img_val.tar",
                {f"ILSVRC2012_val_{i:08d}.JPEG": png_bytes(i) for i in range(1, 4)})
    synsets = np.zeros((3,), dtype=[("ILSVRC2012_ID", object), ("WNID", object),
                                    ("num_children", object)])
    synsets[:] = [(1, "n01440764", 0), (2, "n01443537", 0), (1001, "n00001740", 5)]
    devkit = tmp_path / "devkit"
    (devkit / "ILSVRC2012_devkit_t12" / "data").mkdir(parents=True)
    savemat(devkit / "ILSVRC2012_devkit_t12" / "data" / "meta.mat", {"synsets": synsets})
    (devkit / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt"
     ).write_text("2\n1\n2\n")
    make_tar_gz(archives / "ILSVRC2012_devkit_t12.tar.gz",
                {p.relative_to(devkit).as_posix(): p.read_bytes()
                 for p in devkit.rglob("*") if p.is_file()})
    config = _config(variant="val", archive_dir=str(archives), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match="not the ImageNet release's"):
        materialise(config, "inval", tmp_path / "raw")
    monkeypatch.setattr(imagenet, "VAL_ARCHIVES", {
        name: __import__("hashlib").md5((archives / name).read_bytes()).hexdigest()
        for name in imagenet.VAL_ARCHIVES})
    rows, info = materialise(config, "inval", tmp_path / "raw")
    assert rows.set_index("image_id")["label"].to_dict() == {
        "n01443537/ILSVRC2012_val_00000001.JPEG": "goldfish",
        "n01440764/ILSVRC2012_val_00000002.JPEG": "tench",
        "n01443537/ILSVRC2012_val_00000003.JPEG": "goldfish"}
    assert info["split"] == "val"
    with pytest.raises(DataError, match=r"needs a login.*archive_dir"):
        materialise(_config(variant="val"), "inval", tmp_path / "raw2")
