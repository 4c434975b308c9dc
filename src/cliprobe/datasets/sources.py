"""Dataset sources: each materialises images into the dataset's raw folder and lists them.

One function per source kind, chosen by ``source.kind`` in the dataset config. A source
returns rows (``image_id``, ``path``, ``label``, optional extra columns) and an info dict
(source, license, version).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import (
    DatasetConfig,
    ImageFolderSource,
    SampleSource,
    TypographicInTheWildSource,
)
from cliprobe.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
SAMPLE_LIST = Path(__file__).with_name("sample_photos.csv")

SourceResult = tuple[pd.DataFrame, dict[str, object]]


def _safe_name(name: str) -> str:
    """A UTF-8-encodable version of a file name (non-UTF-8 bytes become \\xNN escapes)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def fetch_sample(source: SampleSource, dataset: str, target: Path) -> SourceResult:
    """Copy the photos scikit-image and scikit-learn ship in their wheels."""
    rows = []
    with SAMPLE_LIST.open(newline="") as handle:
        for entry in csv.DictReader(handle):
            spec = importlib.util.find_spec(entry["package"])
            if spec is None or not spec.submodule_search_locations:
                raise DataError(
                    f"dataset '{dataset}' needs the package {entry['package']} installed "
                    f"(pip install scikit-image scikit-learn)"
                )
            package_dir = Path(next(iter(spec.submodule_search_locations)))
            file = package_dir / entry["resource"]
            if not file.is_file():
                raise DataError(
                    f"dataset '{dataset}': {file} is missing from the installed "
                    f"{entry['package']} package; reinstall it"
                )
            image_id = f"{entry['package']}/{file.name}"
            (target / image_id).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": entry["label"],
                         "license": entry["license"]})
    info = {"source": "photos shipped in the scikit-image and scikit-learn wheels",
            "license": "per image, see the 'license' column", "split": "all"}
    return pd.DataFrame(rows), info


def _labels_from_csv(folder: Path, labels_csv: Path, dataset: str) -> list[tuple[Path, str]]:
    frame = pd.read_csv(labels_csv, dtype=str)
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise DataError(
            f"dataset '{dataset}': {labels_csv} lacks the column(s) {sorted(missing)}; "
            "it needs path,label"
        )
    return [(folder / row.path, row.label) for row in frame.itertuples()]


def _labels_from_subfolders(folder: Path) -> list[tuple[Path, str]]:
    pairs = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                pairs.append((file, _safe_name(class_dir.name)))
    return pairs


def fetch_image_folder(source: ImageFolderSource, dataset: str, target: Path) -> SourceResult:
    """Link (or copy) a user's folder of images into the raw folder."""
    folder = Path(source.path).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset '{dataset}': folder {folder} does not exist; set "
            f"dataset.{dataset}.source.path to a folder of class sub-folders or of images "
            "with a labels CSV"
        )
    if source.labels_csv:
        pairs = _labels_from_csv(folder, Path(source.labels_csv).expanduser(), dataset)
    else:
        pairs = _labels_from_subfolders(folder)
    rows = []
    for file, label in pairs:
        if not file.is_file():
            raise DataError(f"dataset '{dataset}': listed image {file} does not exist")
        image_id = _safe_name(file.relative_to(folder).as_posix())
        _link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": label})
    if not rows:
        raise DataError(
            f"dataset '{dataset}': no images found under {folder} (expected class sub-folders "
            f"of {', '.join(sorted(IMAGE_SUFFIXES))} files, or set source.labels_csv)"
        )
    info = {"source": f"local folder {folder}", "license": "user-supplied", "split": "all"}
    return pd.DataFrame(rows), info


TYPOGRAPHIC_MANIFEST = Path(__file__).with_name("typographic_in_the_wild.csv")
TYPOGRAPHIC_LICENSE = (
    "CC-BY 4.0; Goh et al. 2021, 'Multimodal Neurons in Artificial Neural Networks', Distill "
    "(distillpub/post--multimodal, public/typographic/in-the-wild-2)"
)
#: File-name words that are not the text on the label: "blank" = no label, "dollars" = "$$$".
TYPOGRAPHIC_WORD_TEXT: dict[str, str | None] = {"blank": None, "dollars": "$$$"}
#: Seconds before the second download attempt of a file; doubles with every further attempt.
DOWNLOAD_BACKOFF_SECONDS = 1.0
_CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def load_typographic_manifest() -> pd.DataFrame:
    """The shipped list of the 171 Distill photos: file, sha256, object, word, condition."""
    return pd.read_csv(TYPOGRAPHIC_MANIFEST, dtype=str, keep_default_na=False)


def typographic_row(file_name: str, dataset: str) -> dict[str, str | None]:
    """Manifest columns of a ``<object>-<word>.<ext>`` photo (split at the first ``-``).

    ``label`` = object; ``word`` = the text on the label ("$$$" for ``dollars``, null for
    ``blank``); ``word_label`` = the word as a class name (the file-name word, null for
    ``blank``); ``condition`` = clean (blank) / matching_text (word = object) /
    typographic_attack.
    """
    stem = Path(file_name).stem
    object_, sep, word = stem.partition("-")
    if not sep or not object_ or not word:
        raise DataError(
            f"dataset '{dataset}': photo {file_name} is not named <object>-<word> (e.g. "
            "apple-ipod.jpg, apple-blank.jpg for no label); rename it or remove it"
        )
    if word == "blank":
        condition = "clean"
    elif word == object_:
        condition = "matching_text"
    else:
        condition = "typographic_attack"
    return {
        "label": object_,
        "word": TYPOGRAPHIC_WORD_TEXT.get(word, word),
        "word_label": None if word == "blank" else word,
        "condition": condition,
    }


def default_cache_dir() -> Path:
    """``<platformdirs user cache dir>/cliprobe/typographic_in_the_wild``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("cliprobe")) / "typographic_in_the_wild"


class _ChecksumMismatch(Exception):
    pass


def _download_verified(url: str, destination: Path, sha256: str, timeout: float,
                       retries: int) -> None:
    """Download ``url`` to ``destination`` if its sha256 matches, with retries and backoff.

    Writes to a temporary sibling first, so a killed download never leaves a partial file
    under the final name. Raises the last error (``_ChecksumMismatch`` or an ``OSError``).
    """
    last_error: Exception = OSError("no attempt made")
    for attempt in range(retries):
        if attempt:
            time.sleep(DOWNLOAD_BACKOFF_SECONDS * 2 ** (attempt - 1))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.part-",
                                        dir=destination.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != sha256:
                raise _ChecksumMismatch(f"sha256 {digest.hexdigest()[:12]}..., expected "
                                        f"{sha256[:12]}...")
            os.replace(tmp, destination)
            return
        except urllib.error.HTTPError as error:
            last_error = error
            if 400 <= error.code < 500 and error.code not in (408, 429):
                break  # not found / forbidden: retrying cannot help
        except (_ChecksumMismatch, OSError) as error:  # URLError, timeouts are OSErrors
            last_error = error
        finally:
            tmp.unlink(missing_ok=True)
    raise last_error


def _typographic_info() -> dict[str, object]:
    # Nothing run- or machine-dependent (cache path, URL, download counts): the manifest is
    # byte-identical whether the photos were downloaded, cached or copied from a local folder.
    return {
        "source": "the Distill 'in the wild' typographic photos, sha256-checked against "
                  "cliprobe's manifest",
        "license": TYPOGRAPHIC_LICENSE,
        "split": "all",
    }


def _typographic_from_local_dir(
    source: TypographicInTheWildSource, dataset: str, target: Path, manifest: pd.DataFrame
) -> SourceResult:
    folder = Path(str(source.local_dir)).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset '{dataset}': folder {folder} does not exist; fix "
            f"dataset.{dataset}.source.local_dir (a folder of <object>-<word>.jpg photos) or "
            "set it to null to download the Distill photos"
        )
    if (folder / "in-the-wild-2").is_dir():  # the layout of ../shared/data and of the repo
        folder = folder / "in-the-wild-2"
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"dataset '{dataset}': no photos under {folder} (expected "
                        f"<object>-<word>.jpg files); fix dataset.{dataset}.source.local_dir")
    known = dict(zip(manifest["file"], manifest["sha256"], strict=True))
    present = {p.name for p in files} & set(known)
    if present and len(present) < len(known):
        missing = sorted(set(known) - present)
        raise DataError(
            f"dataset '{dataset}': {folder} holds {len(present)} of the {len(known)} Distill "
            f"photos but not {len(missing)} (first: {missing[0]}); complete the copy, or set "
            f"dataset.{dataset}.source.local_dir to null to download them"
        )
    rows = []
    for file in files:
        row = typographic_row(file.name, dataset)
        if file.name in known and sha256_file(file) != known[file.name]:
            raise DataError(
                f"dataset '{dataset}': {file} differs from the Distill photo of that name "
                "(sha256 mismatch); restore the original file or rename yours"
            )
        image_id = _safe_name(file.name)
        _link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, **row})
    if len(rows) == len(present):  # exactly the Distill set: same manifest as a download
        return pd.DataFrame(rows), _typographic_info()
    info = {
        "source": f"local folder {folder} ({len(present)} of its photos checked against "
                  "the Distill manifest)",
        "license": TYPOGRAPHIC_LICENSE if present else "user-supplied",
        "split": "all",
    }
    return pd.DataFrame(rows), info


def fetch_typographic_in_the_wild(
    source: TypographicInTheWildSource,
    dataset: str,
    target: Path,
    *,
    manifest: pd.DataFrame | None = None,
) -> SourceResult:
    """The Distill "in the wild" typographic photos, from ``local_dir`` or downloaded.

    Downloads go to the cache (``source.cache_dir``, default :func:`default_cache_dir`);
    a file already there is kept when its sha256 matches the manifest (so an interrupted fetch
    resumes), replaced otherwise. ``manifest`` replaces the shipped file list (for tests).
    Columns beyond the required ones: ``word``, ``word_label``, ``condition``.
    """
    rows_expected = load_typographic_manifest() if manifest is None else manifest
    if source.local_dir:
        return _typographic_from_local_dir(source, dataset, target, rows_expected)
    cache = Path(source.cache_dir).expanduser() if source.cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    offline = os.environ.get("CLIPROBE_OFFLINE") == "1"  # as for model weights
    base = source.url_base if source.url_base.endswith("/") else source.url_base + "/"
    rows = []
    for entry in rows_expected.itertuples(index=False):
        cached = cache / entry.file
        if cached.is_file() and sha256_file(cached) != entry.sha256:
            cached.unlink()  # a corrupted or foreign file: fetch it again
        if not cached.is_file():
            url = base + urllib.parse.quote(entry.file)
            if offline:
                reason = "CLIPROBE_OFFLINE=1"
            else:
                try:
                    _download_verified(url, cached, entry.sha256, source.timeout,
                                       source.retries)
                    reason = ""
                except _ChecksumMismatch as error:
                    raise DataError(
                        f"dataset '{dataset}': {entry.file} downloaded from {url} does not "
                        f"match cliprobe's manifest ({error}) after {source.retries} attempts; "
                        f"the server's copy differs from the Distill photo, so set "
                        f"dataset.{dataset}.source.local_dir to a verified copy"
                    ) from None
                except OSError as error:
                    reason = f"{type(error).__name__}: {error}"
            if reason:
                missing = sum(not (cache / f).is_file() for f in rows_expected["file"])
                raise DataError(
                    f"dataset '{dataset}' (Distill typographic photos) is missing {missing} of "
                    f"{len(rows_expected)} photos in {cache} and {entry.file} cannot be "
                    f"downloaded from {url} ({reason}); connect to the network and rerun, or "
                    f"set dataset.{dataset}.source.local_dir to a folder holding the photos"
                )
        _link_or_copy(cached, target / entry.file)
        rows.append({"image_id": entry.file, "path": entry.file,
                     **typographic_row(entry.file, dataset), "condition": entry.condition})
    return pd.DataFrame(rows), _typographic_info()


SOURCES: dict[str, Callable[..., SourceResult]] = {
    "sample": fetch_sample,
    "image_folder": fetch_image_folder,
    "typographic_in_the_wild": fetch_typographic_in_the_wild,
}


def materialise(config: DatasetConfig, dataset: str, target: Path) -> SourceResult:
    """Run the source named by ``config.source.kind``, writing images under ``target``."""
    return SOURCES[config.source.kind](config.source, dataset, target)
