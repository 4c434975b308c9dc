"""Content listings and the stat-keyed digest cache (what DVC sees of a user's image folder)."""

from __future__ import annotations

import hashlib
import os
import typing
from pathlib import Path

from cliprobe.config.schema import DatasetConfig, DatasetSource
from cliprobe.datasets.content import DigestCache, folder_files, listing


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_digests_are_read_once_and_remembered_by_stat(tmp_path: Path) -> None:
    photo = write(tmp_path / "photos" / "cat" / "1.jpg", b"first")
    cache_file = tmp_path / "cache.json"
    cache = DigestCache(cache_file)
    assert cache.sha256(photo) == hashlib.sha256(b"first").hexdigest() and cache.hashed == 1
    cache.save()

    again = DigestCache(cache_file)
    assert again.sha256(photo) == hashlib.sha256(b"first").hexdigest() and again.hashed == 0
    # replaced under the same name (a new file): read again, whatever its size and mtime
    stat = photo.stat()
    replacement = write(tmp_path / "new.jpg", b"other")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(photo)
    assert again.sha256(photo) == hashlib.sha256(b"other").hexdigest() and again.hashed == 1
    # a hard link shares the inode: the digest computed for the original is found
    os.link(photo, tmp_path / "linked.jpg")
    assert again.sha256(tmp_path / "linked.jpg") == hashlib.sha256(b"other").hexdigest()
    assert again.hashed == 1


def test_save_keeps_only_the_files_seen(tmp_path: Path) -> None:
    keep, drop = write(tmp_path / "a.jpg", b"a"), write(tmp_path / "b.jpg", b"b")
    cache = DigestCache(tmp_path / "cache.json")
    cache.sha256(keep), cache.sha256(drop)
    cache.save()
    later = DigestCache(tmp_path / "cache.json")
    later.sha256(keep)
    later.save()
    assert len(DigestCache(tmp_path / "cache.json").known) == 1


def test_listing_of_a_folder_a_file_and_a_missing_path(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write(folder / "cat" / "1.jpg", b"cat")
    write(folder / "dog" / "2.png", b"doggo")
    write(folder / ".DS_Store", b"x")
    write(folder / ".thumbs" / "1.jpg", b"x")
    labels = write(tmp_path / "labels.csv", b"path,label\n")
    assert [p.relative_to(folder).as_posix() for p in folder_files(folder)] == [
        "cat/1.jpg", "dog/2.png"]
    content = listing({"source.path": str(folder), "source.labels_csv": str(labels),
                       "source.local_dir": str(tmp_path / "nowhere")}, DigestCache())
    assert content == {
        "source.labels_csv": {"kind": "file", "size": 11,
                              "sha256": hashlib.sha256(b"path,label\n").hexdigest()},
        "source.local_dir": {"kind": "missing"},
        "source.path": {"kind": "folder", "files": [
            ["cat/1.jpg", 3, hashlib.sha256(b"cat").hexdigest()],
            ["dog/2.png", 5, hashlib.sha256(b"doggo").hexdigest()]]},
    }


def test_every_source_names_the_local_paths_it_reads() -> None:
    """A new path field on a source must be listed in its LOCAL_INPUTS, or the scan stage
    would not see changes there (cache folders are not inputs)."""
    not_local = {"cache_dir",  # the download cache: content checked against pinned digests
                 "labels_file", "class_names_file"}  # members of the archive, or extra files
    sources = typing.get_args(typing.get_args(DatasetSource)[0])
    assert len(sources) >= 11
    for source in sources:
        fields = set(source.model_fields)
        paths = {name for name in fields if name in {"path", "csv"}
                 or name.endswith(("_dir", "_path", "_csv", "_file"))} - not_local
        assert set(source.LOCAL_INPUTS) == paths, source.__name__


def test_local_inputs_are_the_set_fields() -> None:
    config = DatasetConfig.model_validate(
        {"source": {"kind": "image_folder", "path": "/data/photos"}})
    assert config.local_inputs() == {"source.path": "/data/photos"}
    downloaded = DatasetConfig.model_validate(
        {"source": {"kind": "torchvision", "name": "DTD", "split": "test"}})
    assert downloaded.local_inputs() == {}
