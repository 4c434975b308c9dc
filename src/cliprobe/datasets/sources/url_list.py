"""The ``url_list`` source: a CSV of image URLs and labels, downloaded concurrently.

Columns: ``url``, ``label``, and optionally ``sha256`` (checked) and ``file`` (the name to look for
in ``local_dir``). Each image is cached as ``<cache>/url_list/<sha256 of the URL>[:20]<suffix>``;
at most ``source.concurrency`` downloads run at once, each retried with backoff. Images that
cannot be had are counted and listed in the manifest info (``n_failed``, ``failed``), never fatal
unless every image fails.
"""

from __future__ import annotations

import hashlib
import posixpath
import urllib.parse
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import UrlListSource
from cliprobe.datasets.download import DownloadError, Job, download_many, verify_cached
from cliprobe.datasets.sources._common import (
    IMAGE_SUFFIXES,
    SourceResult,
    dataset_cache,
    is_within,
    link_or_copy,
    local_folder,
)
from cliprobe.errors import DataError

#: At most this many failures are listed one by one in the manifest info (all are counted).
MAX_LISTED_FAILURES = 200


def _suffix(url: str) -> str:
    suffix = posixpath.splitext(urllib.parse.urlparse(url).path)[1].lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".jpg"


def image_id_for(url: str) -> str:
    """The stable file name of a URL's image: a hash of the URL plus its image suffix."""
    return hashlib.sha256(url.encode()).hexdigest()[:20] + _suffix(url)


def _read_list(source: UrlListSource, dataset: str) -> pd.DataFrame:
    path = Path(source.csv).expanduser()
    if not path.is_file():
        raise DataError(f"dataset '{dataset}': URL list {path} does not exist; fix "
                        f"dataset.{dataset}.source.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"url", "label"} - set(frame.columns)
    if missing:
        raise DataError(f"dataset '{dataset}': {path.name} lacks the column(s) "
                        f"{sorted(missing)}; it needs url,label (sha256 and file optional)")
    frame = frame[frame["url"].str.strip() != ""].drop_duplicates("url")
    if frame.empty:
        raise DataError(f"dataset '{dataset}': {path.name} lists no URL")
    return frame.reset_index(drop=True)


def fetch_url_list(source: UrlListSource, dataset: str, target: Path) -> SourceResult:
    """Download every listed image (or take it from ``local_dir``); count and list failures."""
    frame = _read_list(source, dataset)
    cache = dataset_cache(source.cache_dir, "url_list")
    local = (local_folder(source.local_dir, dataset, "the downloaded images")
             if source.local_dir else None)
    results: dict[int, Path | str] = {}
    jobs, positions = [], []
    for position, row in enumerate(frame.itertuples(index=False)):
        pin = getattr(row, "sha256", "") or None
        if local is not None:
            name = getattr(row, "file", "") or posixpath.basename(
                urllib.parse.urlparse(row.url).path)
            plain = bool(name) and is_within(local, local / name)
            checked = verify_cached(local / name, pin) if plain else None
            results[position] = checked.path if checked else f"not in {local} (as {name!r})"
            continue
        jobs.append(Job(row.url, cache / image_id_for(row.url), sha256=pin))
        positions.append(position)
    outcomes = download_many(jobs, max_workers=source.concurrency, timeout=source.timeout,
                             retries=source.retries)
    for position, outcome in zip(positions, outcomes, strict=True):
        results[position] = outcome.reason if isinstance(outcome, DownloadError) else outcome.path
    rows, failed = [], []
    for position, row in enumerate(frame.itertuples(index=False)):
        result = results[position]
        if isinstance(result, Path):
            image_id = image_id_for(row.url)
            link_or_copy(result, target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": row.label,
                         "url": row.url})
        else:
            failed.append({"url": row.url, "label": row.label, "reason": result})
    if not rows:
        first = failed[0]
        raise DataError(
            f"dataset '{dataset}': none of the {len(frame)} listed images could be had (first: "
            f"{first['url']}: {first['reason']}); check the network and the URLs, or set "
            f"dataset.{dataset}.source.local_dir to a folder holding the images"
        )
    info: dict[str, object] = {
        "source": f"URL list {Path(source.csv).name} ({len(frame)} URLs)",
        "split": source.split, "n_listed": len(frame), "n_failed": len(failed),
        "failed": failed[:MAX_LISTED_FAILURES],
    }
    return pd.DataFrame(rows), info
