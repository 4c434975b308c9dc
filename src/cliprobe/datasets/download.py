"""The download layer every dataset source shares: cache, checksums, resume, retries, extraction.

- **Cache**: files live under :func:`cache_root` (``source.cache_dir``, else
  ``$CLIPROBE_DATA_CACHE``, else ``<platformdirs user cache dir>/cliprobe``). A verified file
  gets a sidecar ``<file>.verified.json`` (sha256, md5, size, mtime): a later call trusts the
  file without rehashing it while its size and mtime are unchanged, and never downloads it again.
- **Checksums**: a pinned ``sha256`` (and/or ``md5``, for upstreams that only publish md5) is
  checked after every download. Without a pin, the sha256 of the first download is recorded in the
  sidecar and later downloads must match it (trust on first use); callers report it.
- **Resume**: bytes arrive in ``<file>.part``; an interrupted download continues from there with an
  HTTP ``Range`` request (a server that ignores it sends the whole file again).
- **Retries**: network errors, truncated responses and checksum mismatches are retried with
  exponential backoff; a 4xx answer other than 408/429 is not (retrying cannot help).
- **Concurrency**: :func:`download_many` runs at most ``max_workers`` downloads at once.
- **Extraction**: :func:`extract_archive` refuses, before writing anything, archives whose members
  would land outside the target (``..``, absolute paths, drive letters), links that escape it,
  and device files; tar archives are then extracted with ``tarfile``'s ``data`` filter.
- **Offline**: ``CLIPROBE_OFFLINE=1`` never touches the network (:func:`offline`).

Errors raised here are :class:`DownloadError` (with a short ``reason``) or :class:`UnsafeArchive`;
the sources turn them into one-sentence :class:`~cliprobe.errors.DataError` messages naming the
dataset and ``source.local_dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cliprobe.errors import DataError

#: Seconds before the second attempt of a download; doubles with every further attempt.
BACKOFF_SECONDS = 1.0
CHUNK = 1 << 16
USER_AGENT = "cliprobe (https://github.com/; dataset fetch)"
SIDECAR_SUFFIX = ".verified.json"
EXTRACTED_MARKER = ".cliprobe-extracted.json"
_GDRIVE = re.compile(r"^gdrive:(?P<id>[A-Za-z0-9_-]{10,})$")


class DownloadError(Exception):
    """A file could not be downloaded; ``reason`` is a short phrase for a user-facing sentence."""

    def __init__(self, reason: str, *, checksum: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checksum = checksum


class UnsafeArchive(DataError):
    """An archive holds a member that would escape the extraction folder (refused as a whole)."""


def offline() -> bool:
    """True when ``CLIPROBE_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never use the network."""
    return os.environ.get("CLIPROBE_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def cache_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The download cache: ``explicit``, else ``$CLIPROBE_DATA_CACHE``, else the user cache."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("CLIPROBE_DATA_CACHE"):
        return Path(os.environ["CLIPROBE_DATA_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cliprobe"))


def resolve_url(url: str) -> str:
    """``gdrive:<id>`` -> Google Drive's direct-download URL; anything else unchanged."""
    match = _GDRIVE.match(url)
    if match:
        return ("https://drive.usercontent.google.com/download?export=download&confirm=t&id="
                + match["id"])
    return url


def file_name_from_url(url: str) -> str:
    """The last path segment of ``url`` (``gdrive:<id>`` -> ``<id>``), safe as a file name."""
    match = _GDRIVE.match(url)
    if match:
        return match["id"]
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "download"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", urllib.parse.unquote(name))


def hash_file(path: Path) -> tuple[str, str]:
    """``(sha256, md5)`` hex digests of a file's bytes, in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hash_file(path)[0]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _read_sidecar(path: Path) -> dict[str, object]:
    try:
        data = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(path: Path, sha256: str, md5: str, first_seen: str) -> None:
    info = path.stat()
    payload = {"sha256": sha256, "md5": md5, "size": info.st_size, "mtime_ns": info.st_mtime_ns,
               "first_sha256": first_seen}
    tmp = _sidecar(path).with_name(_sidecar(path).name + ".tmp")
    try:
        tmp.write_text(json.dumps(payload, sort_keys=True))
        os.replace(tmp, _sidecar(path))
    except OSError:  # a read-only folder (a user's archive): verify again next time
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Verified:
    """A file present in the cache and checked: its path and digests."""

    path: Path
    sha256: str
    md5: str
    pinned: bool  # True when a sha256 or md5 pin was checked (else: trust on first use)


def _mismatch(sha256: str | None, md5: str | None, got_sha: str, got_md5: str) -> str | None:
    if sha256 and got_sha != sha256.lower():
        return f"sha256 {got_sha[:12]}..., expected {sha256.lower()[:12]}..."
    if md5 and got_md5 != md5.lower():
        return f"md5 {got_md5[:12]}..., expected {md5.lower()[:12]}..."
    return None


def verify_cached(path: Path, sha256: str | None = None, md5: str | None = None) -> Verified | None:
    """The verified cache entry at ``path``, or None when absent or not matching.

    A file whose sidecar matches its size and mtime is trusted without rehashing. Without a pin,
    the sha256 first recorded for this path is the expectation (trust on first use).
    """
    if not path.is_file():
        return None
    record = _read_sidecar(path)
    info = path.stat()
    if record.get("size") == info.st_size and record.get("mtime_ns") == info.st_mtime_ns:
        got_sha, got_md5 = str(record.get("sha256")), str(record.get("md5"))
    else:
        got_sha, got_md5 = hash_file(path)
    expected_sha = sha256 or (None if md5 else _first_seen(record))
    if _mismatch(expected_sha, md5, got_sha, got_md5):
        return None
    if record.get("sha256") != got_sha or record.get("mtime_ns") != info.st_mtime_ns:
        _write_sidecar(path, got_sha, got_md5, _first_seen(record) or got_sha)
    return Verified(path, got_sha, got_md5, pinned=bool(sha256 or md5))


def _first_seen(record: dict[str, object]) -> str | None:
    value = record.get("first_sha256")
    return str(value) if value else None


def _retryable(error: urllib.error.HTTPError) -> bool:
    return not (400 <= error.code < 500 and error.code not in (408, 429))


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-", value or "")
    return int(match.group(1)) if match else None


def _fetch_once(url: str, part: Path, timeout: float, headers: dict[str, str]) -> None:
    """One request: append to ``part`` (resuming with Range) until the response ends."""
    offset = part.stat().st_size if part.is_file() else 0
    request_headers = {"User-Agent": USER_AGENT, **headers}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=request_headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: .part may be complete
            return
        raise
    with response:
        ctype = response.headers.get("Content-Type", "")
        if ctype.startswith("text/html") and not url.endswith((".html", ".htm")):
            raise DownloadError("the server sent a web page instead of the file (a login, "
                                "quota or virus-scan page)")
        resumed = (offset and response.status == 206
                   and _content_range_start(response.headers.get("Content-Range")) == offset)
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with part.open("ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                received += len(block)
        if expected is not None and received < expected:  # the connection dropped: resume later
            raise _Truncated(f"the transfer stopped after {received} of {expected} bytes")


class _Truncated(OSError):
    """A response shorter than its Content-Length (its bytes stay in ``.part``)."""


def download(
    url: str,
    destination: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    headers: dict[str, str] | None = None,
    backoff: float | None = None,
) -> Verified:
    """``destination`` verified against the pins, downloading it (resumably) only if needed.

    Raises :class:`DownloadError` (``checksum=True`` when every attempt gave the wrong bytes)
    and never leaves an unverified file under ``destination``; a ``.part`` file of an interrupted
    transfer is kept for the next attempt, one with the wrong bytes is deleted.
    """
    cached = verify_cached(destination, sha256, md5)
    if cached:
        return cached
    first_seen = _first_seen(_read_sidecar(destination))
    if destination.exists():
        destination.unlink()  # present but wrong: corrupted or changed
    if offline():
        raise DownloadError("CLIPROBE_OFFLINE=1 forbids downloading")
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    wait = BACKOFF_SECONDS if backoff is None else backoff
    real_url = resolve_url(url)
    last: DownloadError = DownloadError("no attempt made")
    attempt, stale_part_dropped = 0, False
    while attempt < max(1, retries):
        if attempt:
            time.sleep(wait * 2 ** (attempt - 1))
        attempt += 1
        resumed = part.is_file() and part.stat().st_size > 0
        try:
            _fetch_once(real_url, part, timeout, headers or {})
            got_sha, got_md5 = hash_file(part)
            problem = _mismatch(sha256 or (None if md5 else first_seen), md5, got_sha, got_md5)
            if problem:
                part.unlink(missing_ok=True)
                if resumed and not stale_part_dropped:  # a .part left by another version
                    attempt, stale_part_dropped = attempt - 1, True
                    continue
                if not sha256 and not md5 and first_seen:
                    problem += " (the sha256 recorded at the first download)"
                last = DownloadError(problem, checksum=True)
                continue
            os.replace(part, destination)
            _write_sidecar(destination, got_sha, got_md5, first_seen or got_sha)
            return Verified(destination, got_sha, got_md5, pinned=bool(sha256 or md5))
        except urllib.error.HTTPError as error:
            last = DownloadError(f"HTTP {error.code} {error.reason}")
            if not _retryable(error):
                break
        except DownloadError as error:
            last = error
            part.unlink(missing_ok=True)
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, truncation
            last = DownloadError(f"{type(error).__name__}: {error}")
    raise last


@dataclass(frozen=True)
class Job:
    """One file of :func:`download_many`: where from, where to, which pins."""

    url: str
    destination: Path
    sha256: str | None = None
    md5: str | None = None


def download_many(
    jobs: Sequence[Job],
    *,
    max_workers: int = 4,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float | None = None,
) -> list[Verified | DownloadError]:
    """Download ``jobs`` with at most ``max_workers`` at a time; one result per job, in order.

    A failed job gives its :class:`DownloadError` instead of raising, so callers can count and
    list failures.
    """

    def run(job: Job) -> Verified | DownloadError:
        try:
            return download(job.url, job.destination, sha256=job.sha256, md5=job.md5,
                            timeout=timeout, retries=retries, backoff=backoff)
        except DownloadError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(run, jobs))


# --- safe extraction ---------------------------------------------------------------------------


def _escapes(name: str) -> str | None:
    """Why ``name`` (an archive member path) would land outside the target, or None."""
    if not name:
        return "an empty name"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return "an absolute path"
    if ".." in PurePosixPath(normalized).parts:
        return "a path outside the extraction folder"
    return None


def _link_escapes(member_name: str, link: str, hard: bool) -> str | None:
    target = link.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return "a link to an absolute path"
    base = "" if hard else posixpath.dirname(member_name.replace("\\", "/"))
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        return "a link pointing outside the extraction folder"
    return None


def _check_tar(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        problem = _escapes(member.name)
        if problem is None and (member.issym() or member.islnk()):
            problem = _link_escapes(member.name, member.linkname, member.islnk())
        if problem is None and (member.isdev() or member.isfifo()):
            problem = "a device or FIFO file"
        if problem is None and not (member.isfile() or member.isdir() or member.issym()
                                    or member.islnk()):
            problem = "an unsupported member type"
        if problem:
            raise _UnsafeMember(member.name, problem)
    return members


def _check_zip(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    for info in members:
        problem = _escapes(info.filename)
        mode = info.external_attr >> 16
        if problem is None and stat.S_ISLNK(mode):
            problem = "a symbolic link"
        kind = stat.S_IFMT(mode)  # 0 when the archiver recorded permissions only
        if problem is None and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            problem = "a device or special file"
        if problem:
            raise _UnsafeMember(info.filename, problem)
    return members


class _UnsafeMember(Exception):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name, self.problem = name, problem


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _extract_zip(archive: zipfile.ZipFile, members: Iterable[zipfile.ZipInfo], to: Path) -> None:
    for info in members:
        target = to / info.filename.replace("\\", "/")
        if not _inside(to, target):  # belt and braces after _check_zip
            raise _UnsafeMember(info.filename, "a path outside the extraction folder")
        archive.extract(info, to)


def archive_kind(path: Path) -> str:
    """``zip`` or ``tar`` (any compression) by content; raises ``DataError`` otherwise."""
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(f"{path} is neither a zip nor a tar archive; check the download or the "
                    "archive path")


def _member_name(name: str) -> str:
    """An archive member's path as compared with ``only`` (forward slashes, no ``./``)."""
    normalized = name.replace("\\", "/")
    while normalized.startswith("./"):
        normalized = normalized[2:]
    return normalized


def members_digest(only: Iterable[str] | None) -> str | None:
    """A short digest of a member selection (None for the whole archive)."""
    if only is None:
        return None
    names = sorted({_member_name(name) for name in only})
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:12]


def extract_archive(archive: Path, target: Path, *, dataset: str,
                    archive_sha256: str | None = None,
                    only: Iterable[str] | None = None) -> Path:
    """Extract ``archive`` into ``target`` safely, once; return ``target``.

    Every member is checked before anything is written: a member with ``..`` or an absolute path,
    a link escaping ``target``, or a device file makes the whole archive refused with
    :class:`UnsafeArchive`. Extraction goes to a staging sibling renamed into place when complete,
    with a marker recording the archive's sha256, so a second call with the same archive returns at
    once and an interrupted extraction starts over. ``only`` (member paths) extracts just those
    members (5,000 test images out of a 40,000-image archive); the marker records the selection.
    """
    digest = archive_sha256 or sha256_file(archive)
    selection = members_digest(only)
    wanted = None if only is None else {_member_name(name) for name in only}
    marker = target / EXTRACTED_MARKER
    try:
        recorded = json.loads(marker.read_text())
        if recorded.get("sha256") == digest and recorded.get("only") == selection:
            return target
    except (OSError, ValueError, AttributeError):
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.extracting-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if archive_kind(archive) == "zip":
            with zipfile.ZipFile(archive) as handle:
                checked = _check_zip(handle)
                if wanted is not None:
                    checked = [m for m in checked if _member_name(m.filename) in wanted]
                _extract_zip(handle, checked, staging)
        else:
            with tarfile.open(archive, "r:*") as handle:
                members = _check_tar(handle)
                if wanted is not None:
                    members = [m for m in members if _member_name(m.name) in wanted]
                if hasattr(tarfile, "data_filter"):
                    handle.extractall(staging, members=members, filter="data")
                else:  # Python without extraction filters: our checks above are the guard
                    handle.extractall(staging, members=members)
        (staging / EXTRACTED_MARKER).write_text(json.dumps({"sha256": digest,
                                                             "archive": archive.name,
                                                             "only": selection}))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except _UnsafeMember as error:
        raise UnsafeArchive(
            f"dataset '{dataset}': archive {archive.name} holds an unsafe member "
            f"{error.name!r} ({error.problem}), so cliprobe refuses to extract any of it; use a "
            f"trusted copy and set dataset.{dataset}.source.local_dir to its extracted folder"
        ) from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        if isinstance(error, getattr(tarfile, "FilterError", ())):
            raise UnsafeArchive(
                f"dataset '{dataset}': archive {archive.name} holds an unsafe member ({error}), "
                f"so cliprobe refuses to extract it; use a trusted copy and set "
                f"dataset.{dataset}.source.local_dir to its extracted folder"
            ) from None
        raise DataError(
            f"dataset '{dataset}': archive {archive.name} cannot be extracted "
            f"({type(error).__name__}: {error}); delete it from the cache to download it again, "
            f"or set dataset.{dataset}.source.local_dir to an extracted copy"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def safe_tar_default() -> Iterator[None]:
    """Make ``tarfile``'s ``data`` filter the default while third-party code extracts archives.

    torchvision's own download helpers call ``extractall`` without a filter; inside this context
    they get the same refusal of ``..``, absolute paths, escaping links and device files.
    """
    if not hasattr(tarfile, "data_filter"):
        yield
        return
    previous = tarfile.TarFile.extraction_filter
    tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)  # type: ignore[assignment]
    try:
        yield
    finally:
        tarfile.TarFile.extraction_filter = previous  # type: ignore[assignment]


def missing_data_error(dataset: str, what: str, reason: str, *, hint: str = "") -> DataError:
    """The one-sentence offline / failed-download error every source raises."""
    extra = f"{hint}, or " if hint else ""
    return DataError(
        f"dataset '{dataset}' cannot get {what} ({reason}); connect to the network and rerun, "
        f"{extra}set dataset.{dataset}.source.local_dir to a local copy"
    )


def fetch_file(
    dataset: str,
    what: str,
    url: str,
    destination: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    hint: str = "",
) -> Verified:
    """:func:`download` with its failures turned into one-sentence ``DataError`` messages."""
    try:
        return download(url, destination, sha256=sha256, md5=md5, timeout=timeout,
                        retries=retries)
    except DownloadError as error:
        if error.checksum:
            raise DataError(
                f"dataset '{dataset}': {what} downloaded from {url} does not match its pinned "
                f"checksum ({error.reason}) after {retries} attempts, so it was discarded; set "
                f"dataset.{dataset}.source.local_dir to a verified copy"
            ) from None
        raise missing_data_error(dataset, what, f"{url}: {error.reason}", hint=hint) from None


def checksum_note(verified: Verified) -> str:
    """``sha256:<hex>`` plus how it was checked (pinned, or recorded at the first download)."""
    how = "pinned" if verified.pinned else "recorded at first download, not pinned"
    return f"sha256:{verified.sha256} ({how})"

