"""The ``kaggle`` source: a Kaggle dataset of class sub-folders, through the official Kaggle API.

The ``kaggle`` package is optional (``pip install 'cliprobe[kaggle]'``) and imported only when a
download is needed; it reads the user's credentials (``~/.kaggle/kaggle.json``,
``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``KAGGLE_API_TOKEN``). The zip is kept in the cache
(one folder per dataset version) and extracted safely; ``local_dir`` takes an unzipped copy.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

from cliprobe.config.schema import KaggleSource
from cliprobe.datasets.download import (
    checksum_note,
    extract_archive,
    offline,
    verify_cached,
)
from cliprobe.datasets.sources._common import (
    SourceResult,
    class_folder_pairs,
    dataset_cache,
    find_class_root,
    local_folder,
    rows_from_pairs,
)
from cliprobe.errors import DataError

CREDENTIAL_FILES = ("kaggle.json", "access_token", "credentials.json")


def kaggle_credentials() -> str | None:
    """Where Kaggle credentials are (an environment variable or a file), or None."""
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    home = Path.home()
    folders = [env.get("KAGGLE_CONFIG_DIR"), home / ".kaggle",
               Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    for folder in folders:
        if not folder:
            continue
        for name in CREDENTIAL_FILES:
            if (Path(folder) / name).is_file():
                return str(Path(folder) / name)
    return None


def _missing(dataset: str, ref: str, what: str) -> DataError:
    return DataError(
        f"dataset '{dataset}' (Kaggle {ref}) needs {what}; create an API token at "
        f"https://www.kaggle.com/settings and save it as ~/.kaggle/kaggle.json (or set "
        f"KAGGLE_USERNAME and KAGGLE_KEY), or set dataset.{dataset}.source.local_dir to an "
        f"unzipped copy of the dataset"
    )


def _kaggle_api(dataset: str, ref: str):  # type: ignore[no-untyped-def]
    """An authenticated ``KaggleApi`` (the package prints help on import: silenced)."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise DataError(
            f"dataset '{dataset}' (Kaggle {ref}) needs the kaggle package: pip install "
            f"'cliprobe[kaggle]', or set dataset.{dataset}.source.local_dir to an unzipped copy"
        ) from None
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(quiet):
            api.authenticate()
    except (Exception, SystemExit):
        raise _missing(dataset, ref, "valid Kaggle credentials (the API rejected the ones "
                       "found)") from None
    return api


def _download_zip(source: KaggleSource, dataset: str, cache: Path, ref: str) -> Path:
    owner, slug = source.dataset.split("/")
    if offline():
        raise DataError(
            f"dataset '{dataset}' (Kaggle {ref}) is not in the cache {cache} and "
            f"CLIPROBE_OFFLINE=1 forbids downloading it; connect and rerun, or set "
            f"dataset.{dataset}.source.local_dir to an unzipped copy"
        )
    if kaggle_credentials() is None:
        raise _missing(dataset, ref, "Kaggle credentials, and none were found")
    api = _kaggle_api(dataset, ref)
    staging = cache / ".download"
    staging.mkdir(parents=True, exist_ok=True)
    request = f"{owner}/{slug}/{source.version}" if source.version else source.dataset
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.dataset_download_files(request, path=str(staging), quiet=True, unzip=False)
    except (Exception, SystemExit) as error:
        raise DataError(
            f"dataset '{dataset}' (Kaggle {ref}) could not be downloaded "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]}); check the network "
            f"and your Kaggle credentials, or set dataset.{dataset}.source.local_dir to an "
            f"unzipped copy"
        ) from None
    downloaded = staging / f"{slug}.zip"
    if not downloaded.is_file():
        raise DataError(f"dataset '{dataset}' (Kaggle {ref}): the Kaggle API wrote no "
                        f"{downloaded.name} in {staging}; rerun, or set "
                        f"dataset.{dataset}.source.local_dir to an unzipped copy")
    final = cache / downloaded.name
    os.replace(downloaded, final)
    shutil.rmtree(staging, ignore_errors=True)
    return final


def fetch_kaggle(source: KaggleSource, dataset: str, target: Path) -> SourceResult:
    """The class folders of a Kaggle dataset (class = folder name) linked into ``target``."""
    ref = source.dataset + (f" version {source.version}" if source.version else "")
    notes = []
    if source.local_dir:
        root = local_folder(source.local_dir, dataset, "an unzipped copy of the Kaggle dataset")
    else:
        owner, slug = source.dataset.split("/")
        version = f"v{source.version}" if source.version else "latest"
        cache = dataset_cache(source.cache_dir, "kaggle", owner, slug, version)
        zip_path = cache / f"{slug}.zip"
        verified = verify_cached(zip_path, source.sha256)
        if verified is None:
            zip_path = _download_zip(source, dataset, cache, ref)
            verified = verify_cached(zip_path, source.sha256)
            if verified is None:
                zip_path.unlink(missing_ok=True)
                raise DataError(f"dataset '{dataset}' (Kaggle {ref}): the downloaded zip does "
                                f"not match dataset.{dataset}.source.sha256, so it was "
                                f"discarded; check the pin or the dataset version")
        root = extract_archive(zip_path, cache / "extracted", dataset=dataset,
                               archive_sha256=verified.sha256)
        notes.append(f"{zip_path.name} {checksum_note(verified)}")
    images = find_class_root(root, source.subdir, dataset)
    rows = rows_from_pairs(class_folder_pairs(images), images, target)
    if rows.empty:
        raise DataError(f"dataset '{dataset}': no class folders of images under {images}; set "
                        f"dataset.{dataset}.source.subdir to the folder holding them")
    info: dict[str, object] = {"source": f"https://www.kaggle.com/datasets/{source.dataset}"
                               + (f"/versions/{source.version}" if source.version else ""),
                               "split": source.split, "checksums": notes}
    return rows, info
