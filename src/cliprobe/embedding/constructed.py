"""Decode once per dataset: the images after a manipulation's construction step, reused by cells.

ImageNet-C's cells all start from the same Resize 256 + CenterCrop 224 of the same photos
(:data:`cliprobe.manipulations.corruptions.IMAGENET_C_CONSTRUCTION`). Instead of decoding and
cropping every JPEG once per cell (95 times in a sweep), the first cell that needs them writes
the constructed images of the whole manifest to one uint8 array, ``(N, H, W, 3)``, under
``data/.cache/constructed/<dataset>/`` (:func:`cliprobe.paths.constructed_cache`), and every
cell reads them from there (memory-mapped).
Cells get exactly the pixels they would have computed themselves (tested byte for byte).

The cache is keyed by the construction's name, the code that loads images, Pillow's version and
every listed file's path, crop box (revisited Oxford / Paris queries are cut to their box first,
as in a cell) and content (the manifest's sha256; size, modification time and inode
for a manifest without it), so a changed photo or manifest builds a new array; older arrays of
the same dataset and construction are removed. It is a cache, not an output: deleting it costs one
decode. ``embed.decode_once: false`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from cliprobe.embedding.reader import ManipulationFailed, crop_boxes
from cliprobe.images import ImageSkipped, load_rgb
from cliprobe.io.atomic import atomic_path, write_text
from cliprobe.manipulations.registry import Construction


def cache_key(frame: pd.DataFrame, image_root: Path, construction: Construction,
              draft: int | None = None) -> str:
    """sha256 over the construction, the image-loading code and options, Pillow and every
    file's path and content (manifest ``sha256``, else its stat identity)."""
    import PIL

    from cliprobe import images

    digest = hashlib.sha256()
    digest.update(f"{construction.name}\0draft={draft}".encode())
    digest.update(Path(images.__file__).read_bytes())
    digest.update(PIL.__version__.encode())
    contents = frame["sha256"] if "sha256" in frame else [None] * len(frame)
    for path, content, box in zip(frame["path"], contents, crop_boxes(frame), strict=True):
        if content:  # the manifest's digest of the bytes (fetch computes it)
            identity = f"{path}\0{content}"
        else:
            file = image_root / str(path)
            try:
                info = os.stat(file)
                identity = f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}"
            except OSError:
                identity = f"{path}\0missing"
        digest.update(identity.encode())
        if box is not None:
            digest.update(f"\0box={box}".encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


class ConstructedImages:
    """Read-only access to a built array: ``image(position)`` or the reason it was skipped.

    Opens the memory map lazily, so the object crosses into DataLoader workers cheaply.
    """

    def __init__(self, array_file: Path, skipped: dict[int, str]) -> None:
        self.array_file = array_file
        self.skipped = skipped
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def image(self, position: int) -> Image.Image:
        """The constructed RGB image of manifest row ``position``; ImageSkipped if unusable."""
        if position in self.skipped:
            raise ImageSkipped(str(position), self.skipped[position])
        if self._array is None:
            self._array = np.load(self.array_file, mmap_mode="r")
        return Image.fromarray(np.ascontiguousarray(self._array[position]))


class _Construct:
    """Map-style dataset: one row -> its constructed pixels, or the skip reason."""

    def __init__(self, files: list[Path], step: Callable[[Image.Image], Image.Image],
                 draft: int | None, boxes: list[list[float] | None] | None = None) -> None:
        self.files = files
        self.boxes = boxes or [None] * len(files)
        self.step = step
        self.draft = draft

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> tuple[int, np.ndarray | None, str, str]:
        """(position, pixels or None, skip reason, failure): an unreadable image is a skip; the
        construction raising on a valid image is a failure the caller stops on."""
        try:
            image = load_rgb(self.files[position], self.boxes[position], self.draft)
        except ImageSkipped as skipped:
            return position, None, skipped.reason, ""
        try:
            constructed = self.step(image)
        except Exception as error:  # raising here would bury it in the DataLoader's wrapper
            return position, None, "", f"{type(error).__name__}: {error}"
        return position, np.asarray(constructed, dtype=np.uint8), "", ""


def _single(items: list[Any]) -> Any:
    return items[0]


def build(frame: pd.DataFrame, image_root: Path, construction: Construction, target: Path,
          num_workers: int = 0, draft: int | None = None) -> dict[int, str]:
    """Construct every row's image into ``target`` (.npy, atomically); the skipped rows
    (unreadable images). Raises ManipulationFailed when the construction raises on a valid
    image (nothing is written)."""
    from torch.utils.data import DataLoader

    if construction.size is None:
        raise ValueError(f"construction {construction.name} has no fixed size: not cacheable")
    width, height = construction.size
    files = [image_root / str(p) for p in frame["path"]]
    skipped: dict[int, str] = {}
    with atomic_path(target) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                          shape=(len(files), height, width, 3))
        loader = DataLoader(_Construct(files, construction.apply, draft, crop_boxes(frame)),
                            batch_size=1,
                            num_workers=num_workers, collate_fn=_single)
        for position, pixels, reason, failure in loader:
            if failure:  # as in a cell: a bug on a valid image stops the stage
                raise ManipulationFailed(f"construction {construction.name} failed on "
                                         f"{files[position]}: {failure}")
            if pixels is None:
                skipped[position] = reason
            else:
                array[position] = pixels
        array.flush()
        del array
    return skipped


def constructed_images(frame: pd.DataFrame, image_root: Path, construction: Construction,
                       cache: Path, num_workers: int = 0,
                       draft: int | None = None) -> ConstructedImages:
    """The constructed images of ``frame`` (rows in order), built on first use."""
    key = cache_key(frame, image_root, construction, draft)
    folder = cache / construction.name
    array_file = folder / f"{key}.npy"
    skipped_file = folder / f"{key}.skipped.json"
    if array_file.is_file() and skipped_file.is_file():
        skipped = {int(k): v for k, v in json.loads(skipped_file.read_text()).items()}
        return ConstructedImages(array_file, skipped)
    folder.mkdir(parents=True, exist_ok=True)
    skipped = build(frame, image_root, construction, array_file, num_workers, draft)
    write_text(skipped_file, json.dumps({str(k): v for k, v in sorted(skipped.items())}))
    for stale in folder.glob("*.npy"):  # arrays of older manifests or photos
        if stale != array_file:
            stale.unlink(missing_ok=True)
            stale.with_suffix(".skipped.json").unlink(missing_ok=True)
    return ConstructedImages(array_file, skipped)
