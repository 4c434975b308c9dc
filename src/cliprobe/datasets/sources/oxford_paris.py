"""The ``oxford_paris`` source: revisited Oxford 5k / Paris 6k (Radenović et al. 2018).

Images come from the VGG archives; the ground truth from revisitop's ``gnd_<name>.mat`` (read with
``scipy.io.loadmat``, which runs no code) or ``gnd_<name>.pkl``. A pickle is opened only after its
sha256 matched the pinned ``gnd.sha256``, and then with an unpickler that admits plain
containers, numbers, strings and numpy arrays only.

The manifest holds the gallery (``split = gallery``, in ``imlist`` order: ``gnd_index``) and the
queries (``split = query``, ``qimlist`` order), whose rows carry ``query_box`` (``[x1, y1, x2,
y2]``) and ``gnd_easy`` / ``gnd_hard`` / ``gnd_junk`` (gallery ``image_id`` lists), all as JSON
strings, so later stages need nothing from the source to run the Easy / Medium / Hard protocols.
The label is the landmark in the image name (``all_souls_000013`` -> ``all_souls``).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cliprobe.config.schema import OxfordParisSource, RemoteFile
from cliprobe.datasets.download import checksum_note, file_name_from_url
from cliprobe.datasets.sources._common import (
    SourceResult,
    images_under,
    link_or_copy,
    local_folder,
    obtain_extracted,
    obtain_file,
)
from cliprobe.errors import DataError

#: What a ground-truth pickle may contain: plain containers and numpy arrays, nothing callable.
_PICKLE_ALLOWED = {
    ("builtins", name) for name in ("list", "dict", "tuple", "set", "frozenset", "str", "bytes",
                                    "int", "float", "bool", "complex", "bytearray")
} | {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 2 pickles spell byte strings
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside :data:`_PICKLE_ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a ground-truth file")


def load_pinned_pickle(path: Path, sha256: str, dataset: str) -> Any:
    """Unpickle ``path`` only if its bytes hash to ``sha256``, with the restricted unpickler."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise DataError(
            f"dataset '{dataset}': {path.name} has sha256 {digest[:12]}..., not the pinned "
            f"{sha256.lower()[:12]}..., so cliprobe will not unpickle it; use the original "
            f"file or fix dataset.{dataset}.source.gnd.sha256"
        )
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"dataset '{dataset}': {path.name} is not a plain ground-truth pickle "
                        f"({error}); use the .mat ground truth instead") from None


def _indices(value: Any, offset: int) -> list[int]:
    array = np.asarray(value if value is not None else [], dtype=np.int64).ravel()
    return [int(i) - offset for i in array]


def _names(value: Any) -> list[str]:
    out = []
    for item in np.asarray(value, dtype=object).ravel():
        while isinstance(item, np.ndarray):  # MATLAB cells: arrays of arrays of strings
            item = item.ravel()[0] if item.size else ""
        out.append(str(item))
    return out


def _field(entry: Any, name: str) -> Any:
    if isinstance(entry, dict):
        return entry.get(name)
    if isinstance(entry, np.void) or hasattr(entry, "dtype"):
        names = getattr(entry.dtype, "names", None) or ()
        return entry[name] if name in names else None
    return None


def parse_ground_truth(path: Path, gnd: RemoteFile, dataset: str) -> dict[str, Any]:
    """``imlist``, ``qimlist`` and per-query ``easy`` / ``hard`` / ``junk`` (0-based) + ``bbx``."""
    if path.suffix == ".pkl":
        raw = load_pinned_pickle(path, str(gnd.sha256), dataset)
        offset = 0
    else:
        from scipy.io import loadmat

        try:
            raw = loadmat(path, squeeze_me=False, struct_as_record=True)
        except (ValueError, OSError, NotImplementedError) as error:
            raise DataError(f"dataset '{dataset}': {path.name} is not a readable .mat ground "
                            f"truth ({error}); delete it from the cache to download it "
                            "again") from None
        offset = 1  # MATLAB indices start at 1
    if not isinstance(raw, dict) or not {"imlist", "qimlist", "gnd"} <= set(raw):
        raise DataError(f"dataset '{dataset}': {path.name} lacks imlist, qimlist or gnd; is it "
                        "a revisitop ground-truth file?")
    entries = list(np.asarray(raw["gnd"]).ravel()) if offset else list(raw["gnd"])
    queries = []
    for entry in entries:
        bbx = _field(entry, "bbx")
        queries.append({
            "easy": _indices(_field(entry, "easy"), offset),
            "hard": _indices(_field(entry, "hard"), offset),
            "junk": _indices(_field(entry, "junk"), offset),
            "bbx": None if bbx is None else [float(x) for x in np.asarray(bbx).ravel()],
        })
    imlist, qimlist = _names(raw["imlist"]), _names(raw["qimlist"])
    if len(queries) != len(qimlist):
        raise DataError(f"dataset '{dataset}': {path.name} has {len(qimlist)} queries but "
                        f"{len(queries)} ground-truth entries")
    return {"imlist": imlist, "qimlist": qimlist, "gnd": queries}


def _label(name: str, pattern: str) -> str:
    match = re.match(pattern, name)
    return match["label"] if match else "other"


def _image_files(source: OxfordParisSource, dataset: str) -> tuple[dict[str, Path], list[str]]:
    notes: list[str] = []
    files: dict[str, Path] = {}
    for remote in source.images:
        root, verified = obtain_extracted(
            dataset, what=f"the image archive {remote.filename or remote.url}", url=remote.url,
            sha256=remote.sha256, md5=remote.md5, filename=remote.filename,
            cache_dir=source.cache_dir, timeout=source.timeout, retries=source.retries)
        notes.append(f"{verified.path.name} {checksum_note(verified)}")
        files.update({p.stem: p for p in images_under(root)})
    return files, notes


def _json_ids(indices: Sequence[int], ids: Sequence[str], dataset: str) -> str:
    try:
        return json.dumps([ids[i] for i in indices])
    except IndexError:
        raise DataError(f"dataset '{dataset}': the ground truth points past the end of imlist "
                        f"({len(ids)} images)") from None


def fetch_oxford_paris(source: OxfordParisSource, dataset: str, target: Path) -> SourceResult:
    """Gallery and query rows of revisited Oxford / Paris, with the protocols' ground truth."""
    gnd_name = source.gnd.filename or file_name_from_url(source.gnd.url)
    if source.local_dir:
        folder = local_folder(source.local_dir, dataset, f"the images and {gnd_name}")
        files = {p.stem: p for p in images_under(folder)}
        found = sorted(folder.rglob(gnd_name))
        if not found:
            raise DataError(f"dataset '{dataset}': no {gnd_name} under {folder}; put the "
                            f"revisitop ground truth there or fix dataset.{dataset}.source.gnd")
        gnd_path, notes = found[0], [f"{gnd_name} from a local copy"]
    else:
        files, notes = _image_files(source, dataset)
        verified = obtain_file(dataset, f"the ground truth {gnd_name}", source.gnd.url,
                               sha256=source.gnd.sha256, md5=source.gnd.md5,
                               filename=source.gnd.filename, cache_dir=source.cache_dir,
                               timeout=source.timeout, retries=source.retries)
        gnd_path = verified.path
        notes.append(f"{gnd_name} {checksum_note(verified)}")
    truth = parse_ground_truth(gnd_path, source.gnd, dataset)
    wanted = [*truth["imlist"], *truth["qimlist"]]
    missing = [name for name in wanted if name not in files]
    if missing:
        raise DataError(
            f"dataset '{dataset}': {len(missing)} of the {len(wanted)} images the ground truth "
            f"names are missing (first: {missing[0]}); check the image archives or "
            f"dataset.{dataset}.source.local_dir"
        )
    gallery_ids = [f"gallery/{name}{files[name].suffix}" for name in truth["imlist"]]
    rows: list[dict[str, object]] = []
    for index, (name, image_id) in enumerate(zip(truth["imlist"], gallery_ids, strict=True)):
        link_or_copy(files[name], target / image_id)
        rows.append({"image_id": image_id, "path": image_id,
                     "label": _label(name, source.label_regex), "split": "gallery",
                     "gnd_index": index, "query_box": None, "gnd_easy": None,
                     "gnd_hard": None, "gnd_junk": None})
    for index, (name, entry) in enumerate(zip(truth["qimlist"], truth["gnd"], strict=True)):
        image_id = f"query/{name}{files[name].suffix}"
        link_or_copy(files[name], target / image_id)
        rows.append({
            "image_id": image_id, "path": image_id, "label": _label(name, source.label_regex),
            "split": "query", "gnd_index": index,
            "query_box": None if entry["bbx"] is None else json.dumps(entry["bbx"]),
            "gnd_easy": _json_ids(entry["easy"], gallery_ids, dataset),
            "gnd_hard": _json_ids(entry["hard"], gallery_ids, dataset),
            "gnd_junk": _json_ids(entry["junk"], gallery_ids, dataset),
        })
    frame = pd.DataFrame(rows)
    frame["gnd_index"] = frame["gnd_index"].astype("int64")
    info: dict[str, object] = {
        "source": ", ".join(r.url for r in source.images) + f" + {source.gnd.url}",
        "split": "gallery+query", "checksums": notes,
        "protocols": "revisited Oxford/Paris Easy/Medium/Hard: gnd_easy, gnd_hard, gnd_junk "
                     "(gallery image_ids) and query_box per query row",
    }
    return frame, info
