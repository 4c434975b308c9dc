"""The Distill "in the wild" typographic photos (Goh et al. 2021), checked file by file.

Downloaded through :mod:`cliprobe.datasets.download` (cache, sha256 against the shipped manifest,
resume, retries) or taken from ``source.local_dir``.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import TypographicInTheWildSource
from cliprobe.datasets.download import (
    DownloadError,
    cache_root,
    download,
    sha256_file,
    verify_cached,
)
from cliprobe.datasets.sources._common import (
    IMAGE_SUFFIXES,
    SourceResult,
    link_or_copy,
    safe_name,
)
from cliprobe.errors import DataError

TYPOGRAPHIC_MANIFEST = Path(__file__).parent.parent / "typographic_in_the_wild.csv"
TYPOGRAPHIC_LICENSE = (
    "CC-BY 4.0; Goh et al. 2021, 'Multimodal Neurons in Artificial Neural Networks', Distill "
    "(distillpub/post--multimodal, public/typographic/in-the-wild-2)"
)
#: File-name words that are not the text on the label: "blank" = no label, "dollars" = "$$$".
TYPOGRAPHIC_WORD_TEXT: dict[str, str | None] = {"blank": None, "dollars": "$$$"}


def load_typographic_manifest() -> pd.DataFrame:
    """The shipped list of the 171 Distill photos: file, sha256, object, word, condition."""
    return pd.read_csv(TYPOGRAPHIC_MANIFEST, dtype=str, keep_default_na=False)


#: ``<object>-<word>``, optionally followed by a number that tells several photos of the same
#: pair apart (``egg-cat-2.jpg``, ``egg-cat_2.jpg``, ``egg-cat (2).jpg``).
PHOTO_NAME = re.compile(r"^(?P<object>[^-]+)-(?P<word>.+?)(?:[-_ ]\(?\d+\)?)?$")


def typographic_row(file_name: str, dataset: str) -> dict[str, str | None]:
    """Manifest columns of an ``<object>-<word>.<ext>`` photo (split at the first ``-``).

    ``label`` = object; ``word`` = the text on the label ("$$$" for ``dollars``, null for
    ``blank``); ``word_label`` = the word as a class name (the file-name word, null for
    ``blank``); ``condition`` = clean (blank) / matching_text (word = object) /
    typographic_attack. A trailing number (``egg-cat-2.jpg``) only tells photos apart.
    """
    match = PHOTO_NAME.match(Path(file_name).stem)
    if match is None:
        raise DataError(
            f"dataset '{dataset}': photo {file_name} is not named <object>-<word> (e.g. "
            "apple-ipod.jpg, apple-blank.jpg for no label); rename it or remove it"
        )
    object_, word = match["object"], match["word"]
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
    """``<cliprobe download cache>/typographic_in_the_wild``."""
    return cache_root() / "typographic_in_the_wild"


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
    """Any folder of ``<object>-<word>`` photos; Distill photos are recognised by content.

    A file is a Distill photo when its sha256 equals one in the shipped manifest, whatever its
    name (a user's own ``apple-ipod.jpg`` is not Distill's). The folder is "the Distill set"
    (same rows and info as a download) only when it holds exactly the 171 photos under their
    Distill names; otherwise the info says how many of its photos are Distill's.
    """
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
    distill_name_of = dict(zip(manifest["sha256"], manifest["file"], strict=True))
    rows = []
    for file in files:
        row = typographic_row(file.name, dataset)
        image_id = safe_name(file.name)
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, **row,
                     "distill_file": distill_name_of.get(sha256_file(file))})
    frame = pd.DataFrame(rows)
    distill = frame["distill_file"].notna()
    if distill.all() and len(frame) == len(manifest) and (
            frame["distill_file"] == frame["image_id"]).all():
        return frame, _typographic_info()  # exactly the Distill set: as a download
    info = {
        "source": f"local folder {folder} ({int(distill.sum())} of its {len(frame)} photos "
                  "are Distill photos, recognised by sha256)",
        "license": (TYPOGRAPHIC_LICENSE if distill.all()
                    else f"user-supplied; Distill photos: {TYPOGRAPHIC_LICENSE}" if distill.any()
                    else "user-supplied"),
        "split": "all",
    }
    return frame, info


def fetch_typographic_in_the_wild(
    source: TypographicInTheWildSource,
    dataset: str,
    target: Path,
    *,
    manifest: pd.DataFrame | None = None,
) -> SourceResult:
    """The Distill "in the wild" typographic photos, from ``local_dir`` or downloaded.

    Downloads go to the cache (``source.cache_dir``, default :func:`default_cache_dir`)
    through :func:`cliprobe.datasets.download.download`;
    a file already there is kept when its sha256 matches the manifest (so an interrupted fetch
    resumes), replaced otherwise. ``manifest`` replaces the shipped file list (for tests).
    Columns beyond the required ones: ``word``, ``word_label``, ``condition``, and
    ``distill_file`` (the Distill name of a photo whose content is a Distill photo, else null).
    """
    rows_expected = load_typographic_manifest() if manifest is None else manifest
    if source.local_dir:
        return _typographic_from_local_dir(source, dataset, target, rows_expected)
    cache = Path(source.cache_dir).expanduser() if source.cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    base = source.url_base if source.url_base.endswith("/") else source.url_base + "/"
    rows = []
    for entry in rows_expected.itertuples(index=False):
        cached = cache / entry.file
        url = base + urllib.parse.quote(entry.file)
        try:
            download(url, cached, sha256=entry.sha256, timeout=source.timeout,
                     retries=source.retries)
        except DownloadError as error:
            if error.checksum:
                raise DataError(
                    f"dataset '{dataset}': {entry.file} downloaded from {url} does not "
                    f"match cliprobe's manifest ({error.reason}) after {source.retries} "
                    f"attempts; the server's copy differs from the Distill photo, so set "
                    f"dataset.{dataset}.source.local_dir to a verified copy"
                ) from None
            missing = sum(verify_cached(cache / f, s) is None
                          for f, s in zip(rows_expected["file"], rows_expected["sha256"],
                                          strict=True))
            raise DataError(
                f"dataset '{dataset}' (Distill typographic photos) is missing {missing} of "
                f"{len(rows_expected)} photos in {cache} and {entry.file} cannot be "
                f"downloaded from {url} ({error.reason}); connect to the network and rerun, or "
                f"set dataset.{dataset}.source.local_dir to a folder holding the photos"
            ) from None
        link_or_copy(cached, target / entry.file)
        rows.append({"image_id": entry.file, "path": entry.file,
                     **typographic_row(entry.file, dataset), "condition": entry.condition,
                     "distill_file": entry.file})
    return pd.DataFrame(rows), _typographic_info()


