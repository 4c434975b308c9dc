"""Captions: the companion table of a caption dataset, the caption-file parsers, the vocabulary.

A caption dataset's manifest lists its images as every manifest does (with an empty ``label``:
its images have no class); the captions live beside it in ``<dataset>.captions.parquet``, one
row per caption: ``caption_id`` (``<image_id>#<n>``, n counting from 0 per image),
``image_id`` and ``caption``. Datasets without captions get an empty table (DVC declares the
file for every dataset).

Caption files, one parser each (all return ``(image path, caption)`` pairs in file order):

- ``karpathy_json``: Karpathy & Fei-Fei's split files (``dataset_coco.json``,
  ``dataset_flickr30k.json`` in ``caption_datasets.zip``): ``images[]`` with ``filepath``
  (COCO: ``val2014``), ``filename``, ``split`` and ``sentences[].raw``;
- ``clip_benchmark_txt``: CLIP_benchmark's Flickr format (``flickr30k_test_karpathy.txt``): a
  header line, then ``<image>.jpg,<caption>`` (captions may hold commas, so a line splits at
  its first ``.jpg,``);
- ``coco_json``: COCO caption annotations (``images[]`` with ``id`` and ``file_name``,
  ``annotations[]`` with ``image_id`` and ``caption``), as in ``captions_val2014.json``;
- ``csv``: a CSV with columns ``path`` and ``caption`` (several rows per image).

The vocabulary: caption datasets have no class names, so the typographic attack writes, and
the zero-shot classifier predicts, the dataset's ``words`` (default :data:`COCO_WORDS`). A word
that appears in one of an image's captions (as a phrase, or with a plural ``s`` / ``es``) would
describe the image truly, so it is never written on that image (:func:`words_in_captions`);
synonyms ("man" for "person") are not detected, which is why "person" is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cliprobe.errors import DataError
from cliprobe.io.atomic import atomic_path

CAPTION_COLUMNS = ("caption_id", "image_id", "caption")
#: Manifest column of a caption dataset: JSON list of the vocabulary words its captions use.
WORDS_COLUMN = "words_in_captions"

#: The 80 COCO object categories (instances_*2014.json), "person" left out (see module doc).
COCO_WORDS: tuple[str, ...] = (
    "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

_TOKEN = re.compile(r"[a-z0-9]+")


# --- the companion table -----------------------------------------------------------------------


def captions_table(image_captions: Iterable[tuple[str, Sequence[str]]]) -> pd.DataFrame:
    """The companion table from ``(image_id, captions)`` pairs (ids ``<image_id>#<n>``)."""
    rows = [{"caption_id": f"{image_id}#{n}", "image_id": image_id, "caption": caption}
            for image_id, captions in image_captions for n, caption in enumerate(captions)]
    return pd.DataFrame(rows, columns=list(CAPTION_COLUMNS)).astype(str)


def write_captions(frame: pd.DataFrame, path: Path, info: dict[str, object]) -> None:
    """Write the companion table (sorted by image id, then caption order) with ``info``."""
    schema = pa.schema([(name, pa.string()) for name in CAPTION_COLUMNS]).with_metadata(
        {b"cliprobe": json.dumps(info, sort_keys=True).encode()})
    table = pa.Table.from_pandas(frame[list(CAPTION_COLUMNS)], schema=schema,
                                 preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_captions(path: Path) -> pd.DataFrame:
    """The companion table (empty when the dataset has no captions)."""
    return pq.read_table(path).to_pandas()


# --- caption files -----------------------------------------------------------------------------


def parse_karpathy_json(path: Path, split: str) -> list[tuple[str, str]]:
    """``(filepath/filename, sentence)`` of the images of ``split`` in a Karpathy split file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    pairs = []
    for image in data.get("images", []):
        if image.get("split") != split:
            continue
        name = "/".join(part for part in (image.get("filepath"), image["filename"]) if part)
        pairs.extend((name, sentence["raw"].strip()) for sentence in image["sentences"])
    return pairs


def parse_clip_benchmark_txt(path: Path) -> list[tuple[str, str]]:
    """``(image, caption)`` of a CLIP_benchmark Flickr file (header line, then
    ``<image>.jpg,<caption>``; a line splits at its first ``.jpg,``)."""
    pairs = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text:
            continue
        name, separator, caption = text.partition(".jpg,")
        if not separator:
            raise DataError(f"line {number} of {path.name} is not '<image>.jpg,<caption>': "
                            f"{text[:60]!r}")
        pairs.append((name + ".jpg", caption.strip()))
    return pairs


def parse_coco_json(path: Path) -> list[tuple[str, str]]:
    """``(file_name, caption)`` of COCO caption annotations, images in id order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    names = {image["id"]: image["file_name"] for image in data.get("images", [])}
    by_image: dict[object, list[str]] = {}
    for annotation in data.get("annotations", []):
        by_image.setdefault(annotation["image_id"], []).append(annotation["caption"].strip())
    return [(names[image], caption) for image in sorted(by_image, key=str)
            if image in names for caption in by_image[image]]


def parse_captions_csv(path: Path) -> list[tuple[str, str]]:
    """``(path, caption)`` rows of a CSV with those two columns."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"path", "caption"} - set(frame.columns)
    if missing:
        raise DataError(f"{path.name} lacks the column(s) {sorted(missing)}; it needs "
                        "path,caption (one row per caption)")
    return [(p.strip(), c.strip()) for p, c in zip(frame["path"], frame["caption"], strict=True)]


def parse_caption_file(path: Path, fmt: str, split: str = "test") -> list[tuple[str, str]]:
    """Dispatch on the format name (see the module docstring)."""
    if fmt == "karpathy_json":
        return parse_karpathy_json(path, split)
    if fmt == "clip_benchmark_txt":
        return parse_clip_benchmark_txt(path)
    if fmt == "coco_json":
        return parse_coco_json(path)
    if fmt == "csv":
        return parse_captions_csv(path)
    raise ValueError(f"unknown caption format {fmt!r}")


def group_captions(pairs: Iterable[tuple[str, str]],
                   limit: int | None = None) -> dict[str, list[str]]:
    """Captions per image, images and captions in first-seen order; empty captions dropped;
    at most ``limit`` per image."""
    grouped: dict[str, list[str]] = {}
    for image, caption in pairs:
        if caption:
            grouped.setdefault(image, []).append(caption)
    if limit is not None:
        grouped = {image: captions[:limit] for image, captions in grouped.items()}
    return grouped


# --- the vocabulary ----------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def words_in_captions(words: Sequence[str], captions: Sequence[str]) -> list[str]:
    """The ``words`` (phrases) that occur in any of ``captions``, plural ``s``/``es`` allowed.

    Matching is on lower-cased alphanumeric tokens: "hot dog" matches "two hot dogs", "cat"
    does not match "catalog".
    """
    token_lists = [_tokens(caption) for caption in captions]
    found = []
    for word in words:
        wanted = _tokens(word)
        if not wanted:
            continue
        last = {wanted[-1], wanted[-1] + "s", wanted[-1] + "es"}
        size = len(wanted)
        if any(tokens[i:i + size - 1] == wanted[:-1] and tokens[i + size - 1] in last
               for tokens in token_lists for i in range(len(tokens) - size + 1)):
            found.append(word)
    return found
