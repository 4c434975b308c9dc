"""The ``torchvision`` source: standard zero-shot sets through ``torchvision.datasets``.

torchvision downloads into ``<cache>/torchvision`` (``download=True``) and checks its own pinned
md5s; with ``local_dir`` (an existing torchvision root) or ``CLIPROBE_OFFLINE=1`` it never
downloads. Datasets stored as files (Food-101, Pets, Flowers-102, DTD, Caltech-101) are linked
as they are; those stored as arrays (CIFAR-10/100, STL-10) are written once as PNG files into
``<cache>/torchvision-files``. torchvision extracts its archives itself; it runs with
``tarfile``'s ``data`` filter as the default (:func:`~cliprobe.datasets.download.safe_tar_default`).
Class names are torchvision's (``_`` -> space; Flowers-102's are
the names CLIP used).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cliprobe.config.schema import TorchvisionSource
from cliprobe.datasets.download import offline, safe_tar_default
from cliprobe.datasets.sources._common import (
    SourceResult,
    dataset_cache,
    link_or_copy,
    local_folder,
    safe_name,
)
from cliprobe.errors import DataError

#: Where each dataset's licence stands (kept in the manifest; see README "Datasets").
LICENSES = {
    "CIFAR10": "no explicit license (Krizhevsky 2009; tiny images collected from the web)",
    "CIFAR100": "no explicit license (Krizhevsky 2009; tiny images collected from the web)",
    "Caltech101": "CC BY 4.0 (Fei-Fei, Fergus, Perona 2004; CaltechDATA)",
    "Food101": "research use; images from foodspotting.com (Bossard et al. 2014)",
    "OxfordIIITPet": "CC BY-SA 4.0 (Parkhi et al. 2012)",
    "Flowers102": "no explicit license; research use (Nilsback & Zisserman 2008)",
    "DTD": "research use only (Cimpoi et al. 2014; images from Flickr)",
    "STL10": "no explicit license; derived from ImageNet (Coates et al. 2011)",
}


def _open(name: str, root: Path, split: str, download: bool) -> Any:
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    if name in ("CIFAR10", "CIFAR100"):
        kwargs: dict[str, Any] = {"train": split == "train"}
    elif name == "Caltech101":
        kwargs = {"target_type": "category"}
    elif name == "OxfordIIITPet":
        kwargs = {"split": split, "target_types": "category"}
    else:
        kwargs = {"split": split}
    # torchvision prints download progress (to stderr here) and extracts without a tar filter
    with contextlib.redirect_stdout(sys.stderr), safe_tar_default():
        return cls(str(root), download=download, **kwargs)


def _files_and_targets(name: str, ds: Any) -> tuple[list[Path], list[int]] | None:
    """Image files and class indices of a file-backed dataset (None for array-backed ones)."""
    if name == "Caltech101":
        base = Path(ds.root) / "101_ObjectCategories"
        files = [base / ds.categories[y] / f"image_{i:04d}.jpg"
                 for y, i in zip(ds.y, ds.index, strict=True)]
        return files, [int(y) for y in ds.y]
    for attribute in ("_image_files", "_images"):
        if hasattr(ds, attribute):
            return [Path(p) for p in getattr(ds, attribute)], [int(y) for y in ds._labels]
    return None


def class_names(name: str, ds: Any) -> list[str]:
    """torchvision's class names with ``_`` as spaces, in class-index order."""
    raw = ds.categories if name == "Caltech101" else ds.classes
    return [str(c).replace("_", " ") for c in raw]


def _array_images(ds: Any) -> tuple[np.ndarray, list[int]]:
    data = np.asarray(ds.data)
    if data.ndim == 4 and data.shape[1] == 3 and data.shape[-1] != 3:  # STL-10: N, C, H, W
        data = data.transpose(0, 2, 3, 1)
    targets = ds.targets if hasattr(ds, "targets") else ds.labels
    return data, [int(t) for t in targets]


def _write_pngs(ds: Any, folder: Path) -> list[int]:
    """Each array image as ``<folder>/<index>.png`` (done once: a marker records completion)."""
    from PIL import Image

    data, targets = _array_images(ds)
    marker = folder / ".complete.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()).get("count") == len(data):
            return targets
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for index, array in enumerate(data):
        Image.fromarray(np.ascontiguousarray(array)).save(staging / f"{index:05d}.png")
    (staging / ".complete.json").write_text(json.dumps({"count": len(data)}))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return targets


def _load(source: TorchvisionSource, dataset: str, root: Path) -> Any:
    try:
        return _open(source.name, root, source.split, download=False)
    except (RuntimeError, OSError) as missing:
        reason = " ".join(str(missing).split())[:160]
    if source.local_dir:
        raise DataError(
            f"dataset '{dataset}': torchvision finds no usable {source.name} in {root} "
            f"({reason}); fix dataset.{dataset}.source.local_dir (a torchvision root holding "
            f"it) or set it to null to download"
        )
    if offline():
        raise DataError(
            f"dataset '{dataset}' ({source.name} via torchvision) is not in the cache {root} "
            f"and CLIPROBE_OFFLINE=1 forbids downloading it; connect and rerun, or set "
            f"dataset.{dataset}.source.local_dir to a torchvision root that holds it"
        )
    try:
        return _open(source.name, root, source.split, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError (md5), ...
        raise DataError(
            f"dataset '{dataset}' ({source.name} via torchvision) cannot be downloaded into "
            f"{root} ({type(error).__name__}: {' '.join(str(error).split())[:160]}); connect "
            f"and rerun, or set dataset.{dataset}.source.local_dir to a torchvision root that "
            f"holds it"
        ) from None


def fetch_torchvision(source: TorchvisionSource, dataset: str, target: Path) -> SourceResult:
    """A torchvision dataset's images linked into ``target`` with class-name labels."""
    if source.local_dir:
        root = local_folder(source.local_dir, dataset, f"a torchvision root holding "
                            f"{source.name}")
    else:
        root = dataset_cache(source.cache_dir, "torchvision")
        root.mkdir(parents=True, exist_ok=True)
    ds = _load(source, dataset, root)
    names = class_names(source.name, ds)
    listed = _files_and_targets(source.name, ds)
    rows = []
    if listed is not None:
        files, targets = listed
        for file, index in zip(files, targets, strict=True):
            try:
                image_id = safe_name(file.relative_to(root).as_posix())
            except ValueError:
                image_id = safe_name(f"{source.split}/{file.parent.name}/{file.name}")
            link_or_copy(file, target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": names[index]})
    else:
        folder = dataset_cache(source.cache_dir, "torchvision-files", source.name, source.split)
        targets = _write_pngs(ds, folder)
        for position, index in enumerate(targets):
            image_id = f"{source.split}/{position:05d}.png"
            link_or_copy(folder / f"{position:05d}.png", target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": names[index]})
    if not rows:
        raise DataError(f"dataset '{dataset}': {source.name} ({source.split}) has no images")
    info: dict[str, object] = {
        "source": f"torchvision.datasets.{source.name} (split {source.split}; torchvision checks "
                  "its pinned md5s)",
        "license": LICENSES[source.name], "split": source.split,
        "class_names_from": "torchvision's class names, '_' as spaces",
        "all_classes": names, "class_order": names,
    }
    return pd.DataFrame(rows), info
