"""What a dataset's files hold: sha256 digests, listings of local inputs, a stat-keyed cache.

DVC sees a dataset's images through two small files rather than by hashing image folders in
every stage:

- the scan stage's listing of the files a fetch stage reads from this machine (a user's image
  folder, a ``local_dir`` copy, a labels CSV): relative path, size and sha256 of each file
  (:func:`listing`), so adding, replacing or deleting one photo changes the listing and
  re-runs that dataset's fetch and cells, and nothing else;
- the manifest's ``sha256`` column (the content of every image the later stages read), which
  also keys the embedding stages' resumable chunks.

Digests are remembered by (device, inode, size, mtime) in a :class:`DigestCache`, as DVC's own
state database does, so listing an unchanged folder of 50,000 photos costs one ``stat`` per
file, not a read. A hard link shares its source's inode, so the fetch stage finds the digests
the scan stage computed for the files it links.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cliprobe.io.atomic import write_json

BLOCK = 1 << 20

#: (device, inode, size, mtime in ns): a file's identity as far as the cache is concerned.
StatKey = tuple[int, int, int, int]


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def stat_key(path: Path) -> StatKey:
    """The (device, inode, size, mtime_ns) of ``path`` (links followed)."""
    info = path.stat()
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class DigestCache:
    """sha256 digests keyed by :func:`stat_key`, loaded from and saved to a JSON file.

    A file whose size or mtime changed, or that was replaced by another file (a new inode), is
    read again. :meth:`save` keeps only the entries used since loading, so the cache tracks the
    folder instead of growing.
    """

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self.known: dict[StatKey, str] = {}
        self.used: dict[StatKey, str] = {}
        self.hashed = 0
        if file is not None and file.is_file():
            try:
                entries = json.loads(file.read_text())
            except (OSError, ValueError):
                entries = []
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, list) and len(entry) == 5:
                    *key, digest = entry
                    self.known[tuple(int(k) for k in key)] = str(digest)  # type: ignore[index]

    def sha256(self, path: Path) -> str:
        """The file's sha256, read only when no cached entry has its stat key."""
        key = stat_key(path)
        digest = self.known.get(key)
        if digest is None:
            digest = sha256_of(path)
            self.hashed += 1
            if stat_key(path) != key:  # written while read: do not remember a torn digest
                return digest
            self.known[key] = digest
        self.used[key] = digest
        return digest

    def save(self) -> None:
        """Write the entries used since loading (no-op without a file)."""
        if self.file is not None:
            write_json(self.file, sorted([*key, digest] for key, digest in self.used.items()))


def _visible(name: str) -> bool:
    return not name.startswith(".")


def folder_files(root: Path) -> list[Path]:
    """Every regular file below ``root``, sorted, hidden files and folders (``.x``) left out
    as the sources leave them out."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        files.extend(Path(folder) / name for name in names if _visible(name))
    return sorted(f for f in files if f.is_file())


def describe(path: Path, cache: DigestCache) -> dict[str, Any]:
    """Content of one local input: a file's size and sha256, a folder's files by relative path
    (``[path, size, sha256]`` rows), or ``missing`` (the fetch stage then says what to fix)."""
    if path.is_file():
        return {"kind": "file", "size": path.stat().st_size, "sha256": cache.sha256(path)}
    if path.is_dir():
        rows = [[file.relative_to(path).as_posix(), file.stat().st_size, cache.sha256(file)]
                for file in folder_files(path)]
        return {"kind": "folder", "files": rows}
    return {"kind": "missing"}


def listing(inputs: dict[str, str], cache: DigestCache) -> dict[str, Any]:
    """The content of every local input (``field -> path``, see
    :meth:`cliprobe.config.schema.DatasetConfig.local_inputs`), keyed by field.

    Paths themselves are left out (they are params already): the same photos at another path
    give the same listing.
    """
    return {field: describe(Path(path).expanduser(), cache)
            for field, path in sorted(inputs.items())}
