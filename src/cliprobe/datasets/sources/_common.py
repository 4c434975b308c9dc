"""Helpers shared by the sources: file names, links, class folders, labels files, cache folders."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from cliprobe.datasets.download import (
    Verified,
    cache_root,
    extract_archive,
    fetch_file,
    file_name_from_url,
    hash_file,
    members_digest,
    verify_cached,
)
from cliprobe.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}

#: What every source returns: rows (image_id, path, label, extra columns) and an info dict.
SourceResult = tuple[pd.DataFrame, dict[str, object]]


def safe_name(name: str) -> str:
    """A UTF-8-encodable version of a file name (non-UTF-8 bytes become \\xNN escapes)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (copy across file systems), replacing ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def is_image(path: Path) -> bool:
    """A regular file with an image suffix (hidden files such as ``._x.jpg`` are skipped)."""
    return (path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
            and path.is_file())


def is_within(root: Path, path: Path) -> bool:
    """True when ``path`` (resolved, links followed) lies inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def dataset_cache(cache_dir: str | None, *parts: str) -> Path:
    """``<cache root>/<parts...>``: where a source keeps its downloads and extractions."""
    return cache_root(cache_dir).joinpath(*parts)


def local_folder(local_dir: str, dataset: str, expected: str) -> Path:
    """``local_dir`` as an existing folder, or a DataError naming the option to fix."""
    folder = Path(local_dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset '{dataset}': folder {folder} does not exist; fix "
            f"dataset.{dataset}.source.local_dir ({expected}) or set it to null to download"
        )
    return folder


def find_class_root(folder: Path, subdir: str | None, dataset: str) -> Path:
    """The folder holding the class sub-folders (or the images) inside an extracted dataset.

    ``subdir`` names it relative to ``folder`` (also looked for one level down, for archives that
    wrap everything in a top folder); without it, single-child folders are descended until a
    folder holds more than one entry or holds images.
    """
    if subdir:
        candidates = [folder / subdir, *(p / subdir for p in sorted(folder.iterdir())
                                         if p.is_dir())]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        raise DataError(
            f"dataset '{dataset}': no folder {subdir!r} in {folder} (top level: "
            f"{', '.join(sorted(p.name for p in folder.iterdir())[:8]) or 'empty'}); fix "
            f"dataset.{dataset}.source.subdir"
        )
    current = folder
    while True:
        entries = [p for p in current.iterdir() if not p.name.startswith(".")]
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) == 1 and not any(is_image(p) for p in entries):
            current = dirs[0]
            continue
        return current


def class_folder_pairs(root: Path) -> list[tuple[Path, str]]:
    """``(image, label)`` for every image under ``root/<label>/`` (any depth below the class)."""
    pairs = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()
                            and not p.name.startswith(".")):
        for file in sorted(class_dir.rglob("*")):
            if is_image(file):
                pairs.append((file, safe_name(class_dir.name)))
    return pairs


def images_under(root: Path) -> list[Path]:
    """Every image file below ``root``, sorted."""
    return sorted(p for p in root.rglob("*") if is_image(p))


def label_from_stem(stem: str, pattern: str | None) -> str | None:
    """The ``label`` group of ``pattern`` matched against a file stem (None when no match).

    Without a pattern the label is the part of the stem before the first ``_``.
    """
    if pattern is None:
        return stem.split("_", 1)[0] if "_" in stem else None
    match = re.match(pattern, stem)
    if not match:
        return None
    label = match.groupdict().get("label")
    return label.strip() if label else None


def rows_from_pairs(pairs: Iterable[tuple[Path, str]], root: Path, target: Path,
                    prefix: str = "") -> pd.DataFrame:
    """Link each image into ``target`` under its path relative to ``root`` and list the rows."""
    rows = []
    for file, label in pairs:
        image_id = prefix + safe_name(file.relative_to(root).as_posix())
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": label})
    return pd.DataFrame(rows, columns=["image_id", "path", "label"])


def read_labels_file(path: Path, fmt: str, dataset: str) -> list[tuple[str, str]]:
    """``(relative image path, label)`` pairs from a CSV (``path,label``) or whitespace file."""
    if fmt == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = {"path", "label"} - set(frame.columns)
        if missing:
            raise DataError(f"dataset '{dataset}': {path.name} lacks the column(s) "
                            f"{sorted(missing)}; it needs path,label")
        return list(zip(frame["path"], frame["label"], strict=True))
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"dataset '{dataset}': line {number} of {path.name} is not "
                            f"'<path> <label>': {line.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


_PLACES_PREFIX = re.compile(r"^/[a-z]/")


def read_class_names(path: Path) -> dict[str, str]:
    """Map class indices (as strings) to names from ``<name> <index>`` lines, or one name a line.

    Places-style names lose their ``/<letter>/`` prefix (``/a/abbey`` -> ``abbey``).
    """
    names: dict[str, str] = {}
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    for position, parts in enumerate(lines):
        if len(parts) >= 2 and parts[-1].lstrip("-").isdigit():
            name, index = " ".join(parts[:-1]), parts[-1]
        else:
            name, index = " ".join(parts), str(position)
        names[index] = _PLACES_PREFIX.sub("", name)
    return names


def obtain_extracted(
    dataset: str,
    *,
    what: str,
    url: str | None,
    sha256: str | None,
    md5: str | None,
    filename: str | None,
    cache_dir: str | None,
    timeout: float,
    retries: int,
    archive_path: str | None = None,
    hint: str = "",
    only: Iterable[str] | None = None,
) -> tuple[Path, Verified]:
    """Download (or take ``archive_path``), verify and safely extract an archive, all cached.

    Returns the extraction folder and the archive's verified digests. A second call finds both in
    the cache and touches neither the network nor the archive's bytes. ``only`` extracts just
    those members (into a folder of their own).
    """
    if archive_path:
        archive = Path(archive_path).expanduser()
        if not archive.is_file():
            raise DataError(f"dataset '{dataset}': archive {archive} does not exist; fix "
                            f"dataset.{dataset}.source.archive_path")
        verified = verify_cached(archive, sha256, md5)
        if verified is None:
            got_sha, got_md5 = hash_file(archive)
            raise DataError(
                f"dataset '{dataset}': archive {archive} does not match its pinned checksum "
                f"(sha256 {got_sha[:12]}..., md5 {got_md5[:12]}...); use the original archive or "
                f"fix dataset.{dataset}.source.sha256 / md5"
            )
    else:
        if not url:
            raise DataError(f"dataset '{dataset}': no url, archive_path or local_dir is set; set "
                            f"one of them under dataset.{dataset}.source")
        name = filename or file_name_from_url(url)
        verified = fetch_file(dataset, what, url, dataset_cache(cache_dir, "downloads", name),
                              sha256=sha256, md5=md5, timeout=timeout, retries=retries,
                              hint=hint)
        archive = verified.path
    stem = re.sub(r"(\.tar)?\.(gz|tgz|bz2|xz|zip|tar)$", "", archive.name) or "archive"
    selection = members_digest(only)
    suffix = f"-only-{selection}" if selection else ""
    folder = dataset_cache(cache_dir, "extracted", f"{stem}-{verified.sha256[:12]}{suffix}")
    return extract_archive(archive, folder, dataset=dataset, archive_sha256=verified.sha256,
                           only=only), verified


def obtain_file(dataset: str, what: str, url: str, *, sha256: str | None, md5: str | None,
                filename: str | None, cache_dir: str | None, timeout: float,
                retries: int) -> Verified:
    """A single (non-archive) file, downloaded once into ``<cache>/downloads`` and verified."""
    name = filename or file_name_from_url(url)
    return fetch_file(dataset, what, url, dataset_cache(cache_dir, "downloads", name),
                      sha256=sha256, md5=md5, timeout=timeout, retries=retries)
