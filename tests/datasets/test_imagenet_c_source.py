"""The released ImageNet-C images: read member by member from fixture tarballs in the released
layout (``<corruption>/<severity>/<wnid>/<file>.JPEG``), from an extracted copy, downloaded from
a local server, and through the fetch stage (only the kept validation images' files)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from dataset_helpers import Server, png_bytes

from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.config.schema import ImageNetCReleased
from cliprobe.datasets.manifest import read_manifest
from cliprobe.datasets.sources.imagenet_c import fetch_released, released_path
from cliprobe.errors import DataError

KEPT = ["n01440764/ILSVRC2012_val_00000001.JPEG", "n01443537/ILSVRC2012_val_00000002.JPEG"]
OTHER = "n01484850/ILSVRC2012_val_00000003.JPEG"  # released, but not a kept val image


def _released_tar(path: Path, family_corruptions: list[str], prefix: str = "") -> Path:
    """A tarball in the released layout, plus members that must never be taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        for n, corruption in enumerate(family_corruptions):
            for severity in (1, 2, 3):
                for k, image_id in enumerate([*KEPT, OTHER]):
                    add(f"{prefix}{corruption}/{severity}/{image_id}",
                        png_bytes(100 * n + 10 * severity + k))
        add("../evil.JPEG", png_bytes(999))
        link = tarfile.TarInfo(f"{prefix}{family_corruptions[0]}/1/n01440764/link.JPEG")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    return path


def test_tarballs_are_read_member_by_member(tmp_path: Path) -> None:
    archives = tmp_path / "tarballs"
    _released_tar(archives / "noise.tar", ["gaussian_noise", "shot_noise"])
    _released_tar(archives / "weather.tar", ["fog"], prefix="ImageNet-C/")
    config = ImageNetCReleased(archive_dir=str(archives),
                               corruptions=["gaussian_noise", "fog"], severities=[1, 3])
    info = fetch_released(config, KEPT, tmp_path / "raw", "inval")
    taken = sorted(p.relative_to(tmp_path / "raw").as_posix()
                   for p in (tmp_path / "raw").rglob("*") if p.is_file())
    assert taken == sorted(f"imagenet_c/{c}/{s}/{i}" for c in ("fog", "gaussian_noise")
                           for s in (1, 3) for i in KEPT)
    assert (released_path(tmp_path / "raw", "gaussian_noise", 3, KEPT[1]).read_bytes()
            == png_bytes(31))  # the member's own bytes
    assert not (tmp_path / "evil.JPEG").exists()
    entry = info["imagenet_c_released"]
    assert entry["images"] == 8 and entry["missing"] == 0


def test_an_extracted_copy_and_a_partial_one(tmp_path: Path) -> None:
    copy = tmp_path / "extracted"
    for image_id in KEPT[:1]:
        for severity in (1, 2):
            file = copy / "contrast" / str(severity) / image_id
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(png_bytes(severity))
    config = ImageNetCReleased(local_dir=str(copy), corruptions=["contrast"], severities=[1, 2])
    info = fetch_released(config, KEPT, tmp_path / "raw", "inval")
    assert info["imagenet_c_released"]["images"] == 2
    assert info["imagenet_c_released"]["missing"] == 2  # the second image is not in the copy
    assert released_path(tmp_path / "raw", "contrast", 2, KEPT[0]).read_bytes() == png_bytes(2)


def test_missing_tarballs_and_wrong_folders_are_one_sentence(tmp_path: Path) -> None:
    config = ImageNetCReleased(archive_dir=str(tmp_path), corruptions=["fog"])
    with pytest.raises(DataError, match=r"weather\.tar does not exist.*archive_dir"):
        fetch_released(config, KEPT, tmp_path / "raw", "inval")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="none of the 10 released ImageNet-C images"):
        fetch_released(ImageNetCReleased(local_dir=str(empty), corruptions=["fog"]), KEPT[:2],
                       tmp_path / "raw", "inval")
    with pytest.raises(ValueError, match="exactly one of archive_dir, local_dir or download"):
        ImageNetCReleased(archive_dir="a", local_dir="b")


def test_download_from_a_server(http_server: Server, tmp_path: Path) -> None:
    _released_tar(http_server.root / "digital.tar", ["pixelate"])
    config = ImageNetCReleased(download=True, url=f"{http_server.url}/{{family}}.tar",
                               corruptions=["pixelate"], severities=[2],
                               cache_dir=str(tmp_path / "cache"))
    info = fetch_released(config, KEPT, tmp_path / "raw", "inval")
    assert info["imagenet_c_released"]["images"] == 2
    assert "digital.tar sha256:" in info["imagenet_c_released"]["checksums"][0]
    fetch_released(config, KEPT, tmp_path / "raw2", "inval")
    assert http_server.served("digital.tar") == 1  # cached and verified, not downloaded again


def test_the_fetch_stage_keeps_the_released_images_of_the_kept_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cliprobe.stages import fetch

    val = tmp_path / "val"
    for image_id in [*KEPT, OTHER]:
        (val / image_id).parent.mkdir(parents=True, exist_ok=True)
        (val / image_id).write_bytes(png_bytes(len(image_id)))
    _released_tar(tmp_path / "tarballs" / "blur.tar", ["zoom_blur"])
    conf = Path(__file__).resolve().parents[2] / "conf"
    raw = compose_params(conf, [
        "model=smoke", "dataset=[imagenet_val]", "manipulation=[]",
        f"dataset.imagenet_val.source.local_dir={val}",
        "dataset.imagenet_val.subsample.classes=2", "dataset.imagenet_val.subsample.seed=3",
        f"dataset.imagenet_val.source.imagenet_c={{archive_dir: {tmp_path / 'tarballs'}, "
        "corruptions: [zoom_blur], severities: [2]}"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(to_yaml(raw))
    fetch.main(["--dataset", "imagenet_val"])
    manifest, info = read_manifest(tmp_path / "data" / "manifests" / "imagenet_val.parquet")
    kept = set(manifest["image_id"])
    assert len(kept) == 2
    released = {p.relative_to(tmp_path / "data" / "raw" / "imagenet_val" / "imagenet_c" /
                              "zoom_blur" / "2").as_posix()
                for p in (tmp_path / "data" / "raw" / "imagenet_val" / "imagenet_c").rglob("*")
                if p.is_file()}
    assert released == kept & {*KEPT, OTHER}
    assert info["imagenet_c_released"]["images"] == len(released)
    assert len(info["all_classes"]) == 1000  # ImageNet val: every class stays in the classifier
    assert info["class_order"][0] == "tench"
