"""The ``archive`` source on archives built by the test and served from 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_helpers import Server, make_tar_gz, make_zip, png_bytes, sha256

from cliprobe.config.schema import DatasetConfig, SubsampleConfig
from cliprobe.datasets.sources import materialise
from cliprobe.datasets.subsample import subsample
from cliprobe.errors import DataError

CLASS_FILES = {f"photos/{label}/{label}_{i}.png": png_bytes(10 * n + i)
               for n, label in enumerate(["cat", "dog", "egg"]) for i in range(4)}


def _config(**source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {"kind": "archive", **source}})


def test_tar_gz_class_folders_download_checksum_resume_and_cache_hit(
        http_server: Server, tmp_path: Path) -> None:
    archive = make_tar_gz(http_server.root / "pets.tar.gz", CLASS_FILES)
    http_server.truncate_once.add("/pets.tar.gz")  # the first attempt is cut short
    config = _config(url=f"{http_server.url}/pets.tar.gz", sha256=sha256(archive.read_bytes()),
                     cache_dir=str(tmp_path / "cache"), timeout=5)
    rows, info = materialise(config, "pets", tmp_path / "raw1")
    assert sorted(rows["label"].unique()) == ["cat", "dog", "egg"] and len(rows) == 12
    assert rows["image_id"].iloc[0] == "cat/cat_0.png"
    assert (tmp_path / "raw1" / "cat" / "cat_0.png").read_bytes() == CLASS_FILES[
        "photos/cat/cat_0.png"]
    ranges = [r for _, r in http_server.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert f"sha256:{sha256(archive.read_bytes())} (pinned)" in info["checksums"][0]

    http_server.requests.clear()
    again, info_again = materialise(config, "pets", tmp_path / "raw2")
    assert http_server.requests == [] and again.equals(rows) and info_again == info

    picked = subsample(rows, SubsampleConfig(classes=2, per_class=3, seed=1))
    assert picked["label"].nunique() == 2 and picked.groupby("label").size().max() == 3


def test_zip_flat_layout_with_label_regex_and_label_map(http_server: Server,
                                                        tmp_path: Path) -> None:
    files = {f"testImages_artphoto/{emotion}_{i}.jpg": png_bytes(i + 7 * n)
             for n, emotion in enumerate(["amusement", "awe", "sad"]) for i in range(3)}
    files["testImages_artphoto/readme.txt"] = b"not an image"
    make_zip(http_server.root / "artphoto.zip", files)
    config = DatasetConfig.model_validate({
        "source": {"kind": "archive", "url": f"{http_server.url}/artphoto.zip",
                   "layout": "flat", "label_regex": r"^(?P<label>[A-Za-z]+)_",
                   "cache_dir": str(tmp_path / "cache"), "timeout": 5},
        "label_map": {"sad": "sadness"}, "license": "research only", "prompts": "this_is"})
    rows, info = materialise(config, "emotions", tmp_path / "raw")
    assert sorted(rows["label"].unique()) == ["amusement", "awe", "sadness"]
    assert len(rows) == 9 and "recorded at first download" in info["checksums"][0]
    assert info["license"] == "research only" and info["prompts"] == "this_is"


def test_labels_file_layout_with_pinned_extra_files(http_server: Server,
                                                    tmp_path: Path) -> None:
    images = {f"images/val/{i:08d}.jpg": png_bytes(100 + i) for i in range(1, 7)}
    make_tar_gz(http_server.root / "data.tar.gz", images)
    val = "".join(f"val/{i:08d}.jpg {i % 2}\n" for i in range(1, 7)).encode()
    categories = b"/a/abbey 0\n/c/church/outdoor 1\n"
    (http_server.root / "val.txt").write_bytes(val)
    (http_server.root / "categories.txt").write_bytes(categories)
    source = {"url": f"{http_server.url}/data.tar.gz", "layout": "labels_file",
              "subdir": "images", "labels_file": "val.txt", "labels_format": "whitespace",
              "class_names_file": "categories.txt", "split": "val",
              "cache_dir": str(tmp_path / "cache"), "timeout": 5,
              "extra_files": [{"url": f"{http_server.url}/val.txt", "sha256": sha256(val)},
                              {"url": f"{http_server.url}/categories.txt",
                               "sha256": sha256(categories)}]}
    rows, info = materialise(_config(**source), "miniplaces", tmp_path / "raw")
    assert rows.set_index("image_id")["label"].to_dict() == {
        f"val/{i:08d}.jpg": ("church/outdoor" if i % 2 else "abbey") for i in range(1, 7)}
    assert info["split"] == "val" and len(info["checksums"]) == 3

    (http_server.root / "categories.txt").write_bytes(b"/a/abbey 0\n")  # tampered upstream
    source["cache_dir"] = str(tmp_path / "cache2")
    with pytest.raises(DataError, match=r"categories\.txt .*does not match its pinned"):
        materialise(_config(**source), "miniplaces", tmp_path / "raw2")


def test_local_archive_and_local_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "mine.zip", CLASS_FILES)
    good = sha256(archive.read_bytes())
    rows, _ = materialise(_config(archive_path=str(archive), sha256=good,
                                  cache_dir=str(tmp_path / "cache")), "mine", tmp_path / "raw")
    assert len(rows) == 12
    with pytest.raises(DataError, match="does not match its pinned checksum"):
        materialise(_config(archive_path=str(archive), sha256="0" * 64,
                            cache_dir=str(tmp_path / "cache")), "mine", tmp_path / "raw2")
    extracted = next((tmp_path / "cache" / "extracted").iterdir())
    rows_local, info = materialise(_config(local_dir=str(extracted), url="https://example.org/x"),
                                   "mine", tmp_path / "raw3")
    assert rows_local.equals(rows) and "local copy" in str(info["source"])


def test_offline_without_cache_is_one_sentence(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    with pytest.raises(DataError) as error:
        materialise(_config(url="https://example.org/data.tar.gz",
                            cache_dir=str(tmp_path / "cache")), "places", tmp_path / "raw")
    message = str(error.value)
    assert message.startswith("dataset 'places' cannot get the archive")
    assert "CLIPROBE_OFFLINE=1" in message and "dataset.places.source.local_dir" in message
    assert "archive_path" in message and ". " not in message


def test_a_labels_file_cannot_reach_outside_the_archive(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png_bytes(99))
    folder = tmp_path / "extracted"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(png_bytes(1))
    (folder / "labels.csv").write_text("path,label\na.png,x\n../../secret.png,y\n")
    with pytest.raises(DataError, match="outside"):
        materialise(_config(local_dir=str(folder), layout="labels_file", subdir="images",
                            labels_file="labels.csv"), "d", tmp_path / "raw")
