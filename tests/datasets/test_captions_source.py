"""Caption datasets: the caption-file parsers, the vocabulary, and the two sources on fixtures
built by the test (archives served from 127.0.0.1, local folders)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_helpers import Server, make_zip, png_bytes, sha256

from cliprobe.config.schema import DatasetConfig, SubsampleConfig
from cliprobe.datasets import captions as cap
from cliprobe.datasets.sources import materialise
from cliprobe.datasets.subsample import subsample
from cliprobe.errors import DataError


def karpathy_json(files: dict[str, list[str]], split_of: dict[str, str],
                  filepath: str = "") -> bytes:
    images = [{"filepath": filepath, "filename": name, "split": split_of[name],
               "sentences": [{"raw": text + " ", "tokens": text.split()} for text in texts]}
              for name, texts in files.items()]
    return json.dumps({"images": images, "dataset": "fixture"}).encode()


CAPTIONS = {
    "1.jpg": ["A dog runs on the beach.", "Two dogs, wet, near the sea.", "A brown animal."],
    "2.jpg": ["A red bus in the street.", "People wait for a bus."],
    "3.jpg": ["Hot dogs on a grill.", "Food, cooking outside."],
    "4.jpg": ["A train in the snow."],
}
SPLITS = {"1.jpg": "test", "2.jpg": "test", "3.jpg": "test", "4.jpg": "train"}


def test_parsers_read_each_format(tmp_path: Path) -> None:
    karpathy = tmp_path / "dataset_x.json"
    karpathy.write_bytes(karpathy_json(CAPTIONS, SPLITS, filepath="val2014"))
    pairs = cap.parse_karpathy_json(karpathy, "test")
    assert pairs[0] == ("val2014/1.jpg", "A dog runs on the beach.")
    assert len(pairs) == 7 and {p for p, _ in pairs} == {"val2014/1.jpg", "val2014/2.jpg",
                                                         "val2014/3.jpg"}
    txt = tmp_path / "flickr30k_test_karpathy.txt"
    txt.write_text("image,caption\n1.jpg,A dog, wet, runs.\n1.jpg,Another one.jpg,x\n\n"
                   "2.jpg,A bus\n")
    assert cap.parse_clip_benchmark_txt(txt) == [("1.jpg", "A dog, wet, runs."),
                                                 ("1.jpg", "Another one.jpg,x"),
                                                 ("2.jpg", "A bus")]
    coco = tmp_path / "captions.json"
    coco.write_text(json.dumps({"images": [{"id": 7, "file_name": "b.jpg"},
                                           {"id": 3, "file_name": "a.jpg"}],
                                "annotations": [{"image_id": 7, "caption": "bee "},
                                                {"image_id": 3, "caption": "ant"},
                                                {"image_id": 7, "caption": "bee two"}]}))
    assert cap.parse_coco_json(coco) == [("a.jpg", "ant"), ("b.jpg", "bee"), ("b.jpg", "bee two")]
    csv = tmp_path / "c.csv"
    csv.write_text('path,caption\nx.png,"one, with a comma"\nx.png,two\n')
    assert cap.parse_captions_csv(csv) == [("x.png", "one, with a comma"), ("x.png", "two")]
    assert cap.group_captions(cap.parse_captions_csv(csv), limit=1) == {
        "x.png": ["one, with a comma"]}
    bad = tmp_path / "bad.csv"
    bad.write_text("file,text\na,b\n")
    with pytest.raises(DataError, match="path,caption"):
        cap.parse_captions_csv(bad)


def test_words_in_captions_matches_phrases_and_plurals_only() -> None:
    words = ["dog", "hot dog", "bus", "cat", "wine glass", "bench"]
    assert cap.words_in_captions(words, ["Two hot dogs on a plate", "A catalog"]) == [
        "dog", "hot dog"]
    assert cap.words_in_captions(words, ["Buses and benches"]) == ["bus", "bench"]
    assert cap.words_in_captions(words, ["a glass of wine"]) == []
    assert len(cap.COCO_WORDS) == 79 and "person" not in cap.COCO_WORDS


def _images(names: list[str], prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}{name}": png_bytes(n, size=12) for n, name in enumerate(names)}


def test_karpathy_split_from_served_archives_extracts_only_the_split(
        http_server: Server, tmp_path: Path) -> None:
    make_zip(http_server.root / "caption_datasets.zip",
             {"dataset_coco.json": karpathy_json(CAPTIONS, SPLITS, filepath="val2014"),
              "readme.txt": b"x"})
    images = make_zip(http_server.root / "val2014.zip", _images(list(CAPTIONS), "val2014/"))
    annotations = (http_server.root / "caption_datasets.zip").read_bytes()
    config = DatasetConfig.model_validate({"source": {
        "kind": "captions", "format": "karpathy_json", "split": "test",
        "annotations": {"url": f"{http_server.url}/caption_datasets.zip",
                        "sha256": sha256(annotations)},
        "annotations_member": "dataset_coco.json",
        "images": {"url": f"{http_server.url}/val2014.zip",
                   "sha256": sha256(images.read_bytes())},
        "max_captions_per_image": 2, "words": ["dog", "bus", "train", "pizza"],
        "cache_dir": str(tmp_path / "cache"), "timeout": 5}})
    rows, info = materialise(config, "coco", tmp_path / "raw")
    assert rows["image_id"].tolist() == ["val2014/1.jpg", "val2014/2.jpg", "val2014/3.jpg"]
    assert set(rows["label"]) == {""}
    assert rows["captions"].iloc[0] == ["A dog runs on the beach.", "Two dogs, wet, near the sea."]
    assert [json.loads(w) for w in rows[cap.WORDS_COLUMN]] == [["dog"], ["bus"], ["dog"]]
    assert (tmp_path / "raw" / "val2014" / "2.jpg").is_file()
    extracted = [p for p in (tmp_path / "cache" / "extracted").rglob("*.jpg")]
    assert sorted(p.name for p in extracted) == ["1.jpg", "2.jpg", "3.jpg"]  # not 4.jpg
    assert info["words"] == ["dog", "bus", "train", "pizza"]
    assert all("(pinned)" in note for note in info["checksums"])
    # a second fetch is served from the cache
    http_server.requests.clear()
    again, _ = materialise(config, "coco", tmp_path / "raw2")
    assert http_server.requests == [] and again.equals(rows)


def test_local_dir_found_where_a_kaggle_copy_unpacks_and_missing_images_named(
        tmp_path: Path) -> None:
    folder = tmp_path / "flickr30k_images" / "flickr30k_images"
    folder.mkdir(parents=True)
    for name, data in _images(list(CAPTIONS)).items():
        (folder / name).write_bytes(data)
    captions = tmp_path / "dataset_flickr30k.json"
    captions.write_bytes(karpathy_json(CAPTIONS, SPLITS))
    source = {"kind": "captions", "format": "karpathy_json", "captions_file": str(captions),
              "local_dir": str(tmp_path / "flickr30k_images")}
    rows, info = materialise(DatasetConfig.model_validate({"source": source}), "flickr",
                             tmp_path / "raw")
    assert rows["image_id"].tolist() == ["1.jpg", "2.jpg", "3.jpg"]
    assert len(info["words"]) == 79
    (folder / "2.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of the 3 captioned images are not under .*2\.jpg"):
        materialise(DatasetConfig.model_validate({"source": source}), "flickr", tmp_path / "r2")


def test_no_images_gives_one_sentence_with_the_hint_before_any_download(tmp_path: Path) -> None:
    config = DatasetConfig.model_validate({"source": {
        "kind": "captions", "format": "karpathy_json",
        "annotations": {"url": "http://127.0.0.1:9/caption_datasets.zip"},
        "annotations_member": "dataset_flickr30k.json",
        "images_hint": "request the images with the form at https://example.org/form"}})
    with pytest.raises(DataError) as raised:
        materialise(config, "flickr30k", tmp_path / "raw")
    message = str(raised.value)
    assert message.count(".") <= 4 and "\n" not in message
    assert "form at https://example.org/form" in message
    assert "dataset.flickr30k.source.local_dir" in message


def test_captions_folder_several_rows_per_image_and_subsampling(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for n in range(6):
        (folder / f"p{n}.png").write_bytes(png_bytes(n))
    (folder / "captions.csv").write_text(
        "path,caption\n" + "".join(f"p{n}.png,photo {n} of a cat\np{n}.png,number {n}\n"
                                   for n in range(6)))
    config = DatasetConfig.model_validate({"source": {
        "kind": "captions_folder", "path": str(folder),
        "captions_csv": str(folder / "captions.csv"), "words": ["cat", "dog"]}})
    rows, info = materialise(config, "mine", tmp_path / "raw")
    assert len(rows) == 6 and rows["captions"].map(len).tolist() == [2] * 6
    assert json.loads(rows[cap.WORDS_COLUMN].iloc[0]) == ["cat"]
    assert info["words"] == ["cat", "dog"] and info["license"] == "user-supplied"
    picked = subsample(rows, SubsampleConfig(per_class=4, seed=0))
    assert len(picked) == 4 and picked["captions"].map(len).tolist() == [2] * 4
    (folder / "captions.csv").write_text("path,caption\n../outside.png,x\n")
    with pytest.raises(DataError, match="outside"):
        materialise(config, "mine", tmp_path / "raw2")


def test_companion_table_round_trip(tmp_path: Path) -> None:
    table = cap.captions_table([("a.jpg", ["one", "two"]), ("b.jpg", ["three"])])
    assert table["caption_id"].tolist() == ["a.jpg#0", "a.jpg#1", "b.jpg#0"]
    cap.write_captions(table, tmp_path / "c.parquet", {"dataset": "x"})
    assert cap.read_captions(tmp_path / "c.parquet").equals(table)
    empty = cap.captions_table([])
    cap.write_captions(empty, tmp_path / "e.parquet", {})
    assert list(cap.read_captions(tmp_path / "e.parquet").columns) == list(cap.CAPTION_COLUMNS)
