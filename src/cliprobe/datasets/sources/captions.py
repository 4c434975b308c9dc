"""Caption datasets: Flickr30k and MSCOCO (Karpathy test splits) and your own captioned images.

Rows carry an empty ``label`` (the images have no class), a ``captions`` list (the fetch stage
moves it into the companion table, :mod:`cliprobe.datasets.captions`) and
``words_in_captions`` (the vocabulary words the image's captions use, never written on it).
The caption file comes from ``captions_file`` or is downloaded (``annotations``, optionally a
member of an archive); the images from ``local_dir``, ``archive_path`` or the ``images``
archive, of which only the split's images are extracted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import CaptionsFolderSource, CaptionsSource
from cliprobe.datasets.captions import (
    COCO_WORDS,
    WORDS_COLUMN,
    group_captions,
    parse_caption_file,
    words_in_captions,
)
from cliprobe.datasets.download import checksum_note
from cliprobe.datasets.sources._common import (
    SourceResult,
    is_within,
    link_or_copy,
    local_folder,
    obtain_extracted,
    obtain_file,
    safe_name,
)
from cliprobe.errors import DataError


def _caption_file(source: CaptionsSource, dataset: str) -> tuple[Path, list[str]]:
    """The local caption file (downloaded, checked and extracted when needed) and its notes."""
    if source.captions_file:
        path = Path(source.captions_file).expanduser()
        if not path.is_file():
            raise DataError(f"dataset '{dataset}': caption file {path} does not exist; fix "
                            f"dataset.{dataset}.source.captions_file")
        return path, []
    remote = source.annotations
    assert remote is not None  # the schema requires captions_file or annotations
    what = f"its caption file {remote.filename or remote.url}"
    if source.annotations_member:
        folder, verified = obtain_extracted(
            dataset, what=what, url=remote.url, sha256=remote.sha256, md5=remote.md5,
            filename=remote.filename, cache_dir=source.cache_dir, timeout=source.timeout,
            retries=source.retries, only=[source.annotations_member],
            hint=f"set dataset.{dataset}.source.captions_file to a local "
                 f"{source.annotations_member} (and local_dir to the images)")
        path = folder / source.annotations_member
        if not path.is_file():
            raise DataError(f"dataset '{dataset}': {verified.path.name} holds no "
                            f"{source.annotations_member}; fix "
                            f"dataset.{dataset}.source.annotations_member")
    else:
        verified = obtain_file(dataset, what, remote.url, sha256=remote.sha256, md5=remote.md5,
                               filename=remote.filename, cache_dir=source.cache_dir,
                               timeout=source.timeout, retries=source.retries)
        path = verified.path
    return path, [f"{verified.path.name} {checksum_note(verified)}"]


def _image_folder(source: CaptionsSource, dataset: str,
                  files: list[str]) -> tuple[Path, str, list[str]]:
    """The folder holding the images, where it came from, and checksum notes."""
    if source.local_dir:
        return local_folder(source.local_dir, dataset, "the folder holding the images"), \
            "a local folder", []
    remote = source.images
    folder, verified = obtain_extracted(
        dataset, what=f"its images {remote.filename or remote.url}" if remote else "its images",
        url=remote.url if remote else None, sha256=remote.sha256 if remote else None,
        md5=remote.md5 if remote else None, filename=remote.filename if remote else None,
        cache_dir=source.cache_dir, timeout=source.timeout, retries=source.retries,
        archive_path=source.archive_path, only=files,
        hint=f"download it yourself and set dataset.{dataset}.source.archive_path")
    origin = remote.url if remote else f"the local archive {verified.path.name}"
    return folder, origin, [f"{verified.path.name} {checksum_note(verified)}"]


def _locate(folder: Path, relative: str) -> Path | None:
    """``relative`` under ``folder``, or its file name there (a local copy of COCO's
    ``val2014`` folder itself rather than its parent)."""
    for candidate in (folder / relative, folder / Path(relative).name):
        if is_within(folder, candidate) and candidate.is_file():
            return candidate
    return None


def _image_root(folder: Path, first: str) -> Path:
    """``folder`` or the sub-folder (two levels at most) that holds the first image, so a
    Kaggle copy (``flickr30k_images/flickr30k_images/``) works as it is unpacked."""
    levels = [[folder]]
    levels.append(sorted(p for p in folder.iterdir() if p.is_dir()))
    levels.append(sorted(q for p in levels[1] for q in p.iterdir() if q.is_dir()))
    for level in levels:
        for candidate in level:
            if _locate(candidate, first) is not None:
                return candidate
    return folder


def caption_rows(grouped: dict[str, list[str]], folder: Path, target: Path, dataset: str,
                 words: list[str], hint: str) -> pd.DataFrame:
    """Rows of the captioned images found under ``folder``, linked into ``target``."""
    if not grouped:
        raise DataError(f"dataset '{dataset}': the caption file lists no captioned image; check "
                        f"dataset.{dataset}.source (format, split)")
    root = _image_root(folder, next(iter(grouped)))
    rows, missing = [], []
    for relative, captions in grouped.items():
        file = _locate(root, relative)
        if file is None:
            missing.append(relative)
            continue
        image_id = safe_name(Path(relative).as_posix())
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": "",
                     "captions": list(captions),
                     WORDS_COLUMN: json.dumps(words_in_captions(words, captions))})
    if missing:
        raise DataError(f"dataset '{dataset}': {len(missing)} of the {len(grouped)} captioned "
                        f"images are not under {folder} (first: {missing[0]}); {hint}")
    return pd.DataFrame(rows)


def fetch_captions(source: CaptionsSource, dataset: str, target: Path) -> SourceResult:
    """A caption split (Flickr30k, MSCOCO, or any caption file) with its images."""
    if not (source.local_dir or source.archive_path or source.images):
        # said first: offline, the caption download would fail before the real problem shows
        hint = source.images_hint or "get the images"
        raise DataError(f"dataset '{dataset}' has no images: {hint}, then set "
                        f"dataset.{dataset}.source.local_dir to the folder holding them")
    caption_file, notes = _caption_file(source, dataset)
    grouped = group_captions(parse_caption_file(caption_file, source.format, source.split),
                             source.max_captions_per_image)
    if not grouped:
        raise DataError(f"dataset '{dataset}': {caption_file.name} holds no caption for split "
                        f"{source.split!r}; fix dataset.{dataset}.source.split or format")
    folder, origin, image_notes = _image_folder(source, dataset, list(grouped))
    words = list(source.words or COCO_WORDS)
    hint = (f"complete the folder or fix dataset.{dataset}.source.local_dir"
            + (f" ({source.images_hint})" if source.images_hint else ""))
    rows = caption_rows(grouped, folder, target, dataset, words, hint)
    info: dict[str, object] = {
        "source": f"images from {origin}; captions from {caption_file.name} "
                  f"({source.format}, split {source.split})",
        "split": source.split, "checksums": [*notes, *image_notes], "words": words,
    }
    return rows, info


def fetch_captions_folder(source: CaptionsFolderSource, dataset: str,
                          target: Path) -> SourceResult:
    """Your own images (``path``) with a ``path,caption`` CSV (several rows per image)."""
    folder = Path(source.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"dataset '{dataset}': folder {folder} does not exist; fix "
                        f"dataset.{dataset}.source.path")
    csv = Path(source.captions_csv).expanduser()
    if not csv.is_file():
        raise DataError(f"dataset '{dataset}': caption CSV {csv} does not exist; fix "
                        f"dataset.{dataset}.source.captions_csv")
    try:
        grouped = group_captions(parse_caption_file(csv, "csv"))
    except DataError as error:
        raise DataError(f"dataset '{dataset}': {error}") from None
    outside = [p for p in grouped if not is_within(folder, folder / p)]
    if outside:
        raise DataError(f"dataset '{dataset}': {csv.name} lists {outside[0]!r}, a path outside "
                        f"{folder}; refusing it")
    words = list(source.words or COCO_WORDS)
    rows = caption_rows(grouped, folder, target, dataset, words,
                        f"fix {csv.name} or dataset.{dataset}.source.path")
    return rows, {"source": f"local folder with {csv.name}", "split": "all", "words": words,
                  "license": "user-supplied"}
