"""The Distill "in the wild" typographic photos: shipped manifest, local folder, download."""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cliprobe.config.schema import DatasetConfig, TypographicInTheWildSource
from cliprobe.datasets import download
from cliprobe.datasets.manifest import build_manifest
from cliprobe.datasets.sources import (
    fetch_typographic_in_the_wild,
    load_typographic_manifest,
    materialise,
    typographic_row,
)
from cliprobe.errors import DataError

OBJECTS = ["apple", "laptop", "mug", "phone", "pizza", "plant", "toaster", "trash", "wine"]


@pytest.fixture(scope="module")
def distill(shared_data: Path) -> Path:
    """../shared/data/typographic_in_the_wild (skips when absent)."""
    return shared_data / "typographic_in_the_wild"


def _source(**fields: object) -> TypographicInTheWildSource:
    return TypographicInTheWildSource(kind="typographic_in_the_wild", **fields)


def test_shipped_manifest_lists_the_171_photos() -> None:
    manifest = load_typographic_manifest()
    assert list(manifest.columns) == ["file", "sha256", "object", "word", "condition"]
    assert len(manifest) == 171 and manifest["file"].is_unique
    assert manifest["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert sorted(manifest["object"].unique()) == OBJECTS
    assert manifest["condition"].value_counts().to_dict() == {
        "typographic_attack": 154, "clean": 9, "matching_text": 8}
    for row in manifest.itertuples():
        assert row.file == f"{row.object}-{row.word}.jpg"
        assert typographic_row(row.file, "d")["condition"] == row.condition


def test_shipped_manifest_matches_the_shared_labels(distill: Path) -> None:
    manifest = load_typographic_manifest().set_index("file")
    with (distill / "labels.csv").open(newline="") as handle:
        labels = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert set(labels) == set(manifest.index)
    for name, row in labels.items():
        assert manifest.loc[name, "object"] == row["object"]
        assert manifest.loc[name, "condition"] == row["condition"]
        assert (manifest.loc[name, "word"] == "blank") == (row["attack_text"] == "")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("apple-ipod.jpg", ("apple", "ipod", "ipod", "typographic_attack")),
        ("apple-dollars.jpg", ("apple", "$$$", "dollars", "typographic_attack")),
        ("apple-blank.jpg", ("apple", None, None, "clean")),
        ("mug-mug.jpg", ("mug", "mug", "mug", "matching_text")),
        ("egg-CAT.png", ("egg", "CAT", "CAT", "typographic_attack")),
        ("egg-cat-2.jpg", ("egg", "cat", "cat", "typographic_attack")),
        ("egg-cat_12.jpg", ("egg", "cat", "cat", "typographic_attack")),
        ("egg-egg (3).jpg", ("egg", "egg", "egg", "matching_text")),
        ("egg-blank-1.jpg", ("egg", None, None, "clean")),
        ("egg-ipod-mini.jpg", ("egg", "ipod-mini", "ipod-mini", "typographic_attack")),
    ],
)
def test_file_names_give_label_word_and_condition(name: str, expected: tuple) -> None:
    row = typographic_row(name, "d")
    assert (row["label"], row["word"], row["word_label"], row["condition"]) == expected


def test_local_copy_is_verified_and_listed(distill: Path, tmp_path: Path) -> None:
    config = DatasetConfig(source=_source(local_dir=str(distill)))
    rows, info = materialise(config, "wild", tmp_path / "raw")
    assert len(rows) == 171
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(rows["path"])
    assert list(rows.columns) == ["image_id", "path", "label", "word", "word_label", "condition",
                                  "distill_file"]
    assert (rows["distill_file"] == rows["image_id"]).all()
    by_id = rows.set_index("image_id")
    assert by_id.loc["apple-dollars.jpg", "word"] == "$$$"
    assert by_id.loc["apple-dollars.jpg", "word_label"] == "dollars"
    assert pd.isna(by_id.loc["apple-blank.jpg", "word"])
    assert pd.isna(by_id.loc["apple-blank.jpg", "word_label"])
    assert by_id.loc["apple-blank.jpg", "condition"] == "clean"
    assert "CC-BY 4.0" in str(info["license"])
    manifest = build_manifest(rows, split=str(info["split"]))
    assert sorted(manifest["label"].unique()) == OBJECTS
    assert manifest.groupby("condition").size().to_dict() == {
        "clean": 9, "matching_text": 8, "typographic_attack": 154}


# --- small fixtures of 3 photos, for the error paths and the download -----------------------

THREE = ["apple-ipod.jpg", "apple-blank.jpg", "mug-dollars.jpg"]


@pytest.fixture
def three_photos(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A folder of 3 tiny JPEG-named files and a manifest (file, sha256, ...) for them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = []
    for i, name in enumerate(THREE):
        payload = f"photo {i} ".encode() * (1000 + i)
        (folder / name).write_bytes(payload)
        row = typographic_row(name, "d")
        rows.append({"file": name, "sha256": hashlib.sha256(payload).hexdigest(),
                     "object": row["label"], "word": Path(name).stem.split("-", 1)[1],
                     "condition": row["condition"]})
    return folder, pd.DataFrame(rows)


def test_a_modified_distill_named_photo_is_taken_as_the_users_own(three_photos,
                                                                  tmp_path: Path) -> None:
    folder, manifest = three_photos
    (folder / "apple-blank.jpg").write_bytes(b"edited")
    rows, info = fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "wild",
                                               tmp_path / "raw", manifest=manifest)
    by_id = rows.set_index("image_id")
    assert pd.isna(by_id.loc["apple-blank.jpg", "distill_file"])
    assert by_id.loc["apple-ipod.jpg", "distill_file"] == "apple-ipod.jpg"
    assert "2 of its 3 photos are Distill photos" in info["source"]
    assert info["license"].startswith("user-supplied; Distill photos: CC-BY 4.0")


def test_part_of_the_distill_set_is_accepted_and_counted(three_photos, tmp_path: Path) -> None:
    folder, manifest = three_photos
    (folder / "mug-dollars.jpg").unlink()
    rows, info = fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "wild",
                                               tmp_path / "raw", manifest=manifest)
    assert rows["distill_file"].tolist() == ["apple-blank.jpg", "apple-ipod.jpg"]
    assert "2 of its 2 photos are Distill photos" in info["source"]
    assert "CC-BY 4.0" in info["license"] and "user-supplied" not in info["license"]


def test_own_photos_named_like_distill_ones_are_not_distill(distill: Path,
                                                            tmp_path: Path) -> None:
    # a user's own photos: 35 of the names equal Distill file names, none is a Distill photo
    folder = tmp_path / "mine"
    folder.mkdir()
    names = [*load_typographic_manifest()["file"].tolist()[:35], "egg-cat.jpg", "egg-blank.jpg"]
    for i, name in enumerate(names):
        (folder / name).write_bytes(f"my own photo {i}".encode())
    config = DatasetConfig(source=_source(local_dir=str(folder)))
    rows, info = materialise(config, "mine", tmp_path / "raw")
    assert len(rows) == 37 and rows["distill_file"].isna().all()
    assert info["license"] == "user-supplied"
    assert "0 of its 37 photos are Distill photos" in info["source"]
    assert rows.set_index("image_id").loc["egg-cat.jpg", "condition"] == "typographic_attack"

    # the Distill photos themselves, renamed: recognised by content, conditions from the names
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    wild = distill / "in-the-wild-2"
    shutil.copy(wild / "apple-ipod.jpg", renamed / "green_apple-ipod-1.jpg")
    shutil.copy(wild / "apple-blank.jpg", renamed / "green_apple-blank.jpg")
    rows, info = materialise(DatasetConfig(source=_source(local_dir=str(renamed))), "r",
                             tmp_path / "raw2")
    assert rows["distill_file"].tolist() == ["apple-blank.jpg", "apple-ipod.jpg"]
    assert rows["label"].tolist() == ["green_apple", "green_apple"]
    assert rows["word_label"].tolist()[1] == "ipod"
    assert "2 of its 2 photos are Distill photos" in info["source"]


def test_any_folder_of_object_word_photos_works(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ["egg-cat.jpg", "egg-blank.jpg", "egg-egg.png", "notes.txt"]:
        (folder / name).write_bytes(b"x")
    rows, info = fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "mine",
                                               tmp_path / "raw")
    assert rows["image_id"].tolist() == ["egg-blank.jpg", "egg-cat.jpg", "egg-egg.png"]
    assert rows["condition"].tolist() == ["clean", "typographic_attack", "matching_text"]
    assert info["license"] == "user-supplied"
    (folder / "egg-cat-2.jpg").write_bytes(b"y")  # a second photo of the same pair
    again, _ = fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "mine",
                                             tmp_path / "raw0")
    assert again.set_index("image_id").loc["egg-cat-2.jpg", "word_label"] == "cat"
    (folder / "egg.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"egg\.jpg is not named <object>-<word>"):
        fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "mine", tmp_path / "r2")
    with pytest.raises(DataError, match=r"dataset\.mine\.source\.local_dir"):
        fetch_typographic_in_the_wild(_source(local_dir=str(tmp_path / "nope")), "mine",
                                      tmp_path / "r3")


class _Server:
    """A local HTTP server over a folder, counting the requests per path."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/photos/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def fetched(self) -> list[str]:
        return sorted(p.rsplit("/", 1)[-1] for p in self.requests)


@pytest.fixture
def server(three_photos) -> Iterator[_Server]:
    folder, _ = three_photos
    running = _Server(folder.parent)
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()
    running.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.0)
    monkeypatch.delenv("CLIPROBE_OFFLINE", raising=False)


def test_download_verifies_and_resumes_from_the_cache(
    three_photos, server: _Server, tmp_path: Path
) -> None:
    folder, manifest = three_photos
    cache = tmp_path / "cache"
    source = _source(url_base=server.url, cache_dir=str(cache), timeout=5)
    rows, info = fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw1",
                                               manifest=manifest)
    assert server.fetched() == sorted(THREE)
    assert rows["image_id"].tolist() == THREE
    assert rows.set_index("image_id").loc["mug-dollars.jpg", "word"] == "$$$"
    for name in THREE:
        assert (cache / name).read_bytes() == (folder / name).read_bytes()
        assert (tmp_path / "raw1" / name).read_bytes() == (folder / name).read_bytes()
    assert not [p for p in cache.iterdir() if ".part-" in p.name]

    # a second fetch downloads nothing; a corrupted cached file alone is fetched again
    server.requests.clear()
    again, info_again = fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw2",
                                                      manifest=manifest)
    assert server.requests == [] and again.equals(rows) and info_again == info
    (cache / "apple-blank.jpg").write_bytes(b"truncated")
    fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw3", manifest=manifest)
    assert server.fetched() == ["apple-blank.jpg"]


def test_a_corrupted_download_is_a_clear_error(
    three_photos, server: _Server, tmp_path: Path
) -> None:
    folder, manifest = three_photos
    (folder / "mug-dollars.jpg").write_bytes(b"not the photo")
    source = _source(url_base=server.url, cache_dir=str(tmp_path / "cache"), timeout=5,
                     retries=2)
    with pytest.raises(DataError) as error:
        fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw", manifest=manifest)
    message = str(error.value)
    assert "mug-dollars.jpg" in message and "does not match" in message
    assert "after 2 attempts" in message and "local_dir" in message
    assert server.fetched().count("mug-dollars.jpg") == 2  # retried, then gave up
    assert not (tmp_path / "cache" / "mug-dollars.jpg").exists()
    assert (tmp_path / "cache" / "apple-ipod.jpg").is_file()  # good files are kept


def test_a_missing_file_on_the_server_is_not_retried(
    three_photos, server: _Server, tmp_path: Path
) -> None:
    folder, manifest = three_photos
    (folder / "apple-ipod.jpg").unlink()
    source = _source(url_base=server.url, cache_dir=str(tmp_path / "cache"), timeout=5)
    with pytest.raises(DataError, match=r"apple-ipod\.jpg cannot be downloaded .*404"):
        fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw", manifest=manifest)
    assert server.fetched() == ["apple-ipod.jpg"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_is_one_sentence_naming_dataset_missing_files_and_local_dir(
    three_photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, manifest = three_photos
    source = _source(url_base=f"http://127.0.0.1:{_closed_port()}/", timeout=2, retries=2,
                     cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError) as error:
        fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw", manifest=manifest)
    message = str(error.value)
    assert message.startswith("dataset 'wild'") and message.count(". ") == 0
    assert "missing 3 of 3 photos" in message
    assert "dataset.wild.source.local_dir" in message
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    with pytest.raises(DataError, match="CLIPROBE_OFFLINE=1"):
        fetch_typographic_in_the_wild(source, "wild", tmp_path / "raw", manifest=manifest)


def test_downloaded_and_local_copies_give_the_same_rows_and_info(
    three_photos, server: _Server, tmp_path: Path
) -> None:
    folder, manifest = three_photos
    downloaded = fetch_typographic_in_the_wild(
        _source(url_base=server.url, cache_dir=str(tmp_path / "cache"), timeout=5), "wild",
        tmp_path / "raw1", manifest=manifest)
    local = fetch_typographic_in_the_wild(_source(local_dir=str(folder)), "wild",
                                          tmp_path / "raw2", manifest=manifest)
    pd.testing.assert_frame_equal(downloaded[0].sort_values("image_id").reset_index(drop=True),
                                  local[0].reset_index(drop=True))
    assert downloaded[1] == local[1]
    shutil.rmtree(tmp_path / "raw1")
