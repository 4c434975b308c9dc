"""Read images of a manifest, manipulate and preprocess them (runs in DataLoader workers)."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from cliprobe.datasets.captions import WORDS_COLUMN
from cliprobe.errors import CliprobeError
from cliprobe.images import ImageSkipped, load_rgb
from cliprobe.io.embeddings import NOT_APPLICABLE, UNREADABLE
from cliprobe.manipulations.registry import (
    ImageContext,
    Manipulated,
    Manipulation,
    ManipulationNotApplicable,
)
from cliprobe.seeding import image_rng, legacy_seed

#: (image, context) -> manipulated image, optionally with per-image info; steps made by
#: :func:`manipulation_step` also take ``constructed=True`` for an image that already went
#: through the manipulation's construction step
ImageStep = Callable[..., "Manipulated | Image.Image"]


def _context(context_or_id: ImageContext | str) -> ImageContext:
    if isinstance(context_or_id, ImageContext):
        return context_or_id
    return ImageContext(image_id=context_or_id, label="", class_names=())


def manipulation_step(
    manipulation: Manipulation[Any], params: Any, cell_name: str, global_seed: int
) -> Callable[[Image.Image, ImageContext | str], Manipulated]:
    """Bind a registered manipulation to its params and to per-image seeds.

    The seed depends on (global seed, image id, cell name) only, so two cells that use the same
    function with different params draw independent randomness, and reruns draw the same.
    """

    def step(image: Image.Image, context: ImageContext | str,
             constructed: bool = False) -> Manipulated:
        ctx = _context(context)
        if manipulation.uses_global_rng:
            np.random.seed(legacy_seed(global_seed, ctx.image_id, cell_name))
        return manipulation(image, params, image_rng(global_seed, ctx.image_id, cell_name), ctx,
                            constructed=constructed)

    return step


def manipulation_transform(
    manipulation: Manipulation[Any], params: Any, cell_name: str, global_seed: int
) -> Callable[[Image.Image, ImageContext | str], Image.Image]:
    """Like :func:`manipulation_step`, returning only the image (image id or context in)."""
    step = manipulation_step(manipulation, params, cell_name, global_seed)
    return lambda image, context, constructed=False: step(image, context, constructed).image


@dataclass
class Item:
    """One manifest row after loading: a preprocessed tensor, or why there is none.

    ``skip_reason`` (with ``skip_kind`` :data:`UNREADABLE` or :data:`NOT_APPLICABLE`) leaves
    the image out of the cell; ``failure`` means the manipulation raised on a valid image, and
    the caller must stop the stage with it (:func:`raise_failure`).
    """

    position: int
    tensor: Any | None
    skip_reason: str | None
    info: str = ""
    skip_kind: str = UNREADABLE
    failure: str | None = None


class ManipulationFailed(CliprobeError):
    """A manipulation raised on a valid image: a bug to fix, not an image to skip."""


def raise_failure(item: Item, image_id: str, description: str) -> None:
    """Stop the stage when ``item`` records a manipulation failure (no-op otherwise)."""
    if item.failure is not None:
        raise ManipulationFailed(
            f"{description}: the manipulation failed on image {image_id!r} with "
            f"{item.failure}. Unreadable images are skipped, but this image is valid: fix the "
            "manipulation, or make it raise ManipulationNotApplicable for images it cannot "
            "handle (they are then counted as n_not_applicable)"
        )


def _describe_error(error: Exception) -> str:
    """``ValueError: message (at module.py:42)``: the exception and where it was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def excluded_words(manifest: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per row, the words a typographic attack must not write (a caption dataset's
    ``words_in_captions``, JSON lists); empty tuples for other datasets."""
    if WORDS_COLUMN not in manifest:
        return [()] * len(manifest)
    return [tuple(json.loads(text)) if isinstance(text, str) and text else ()
            for text in manifest[WORDS_COLUMN]]


def image_contexts(manifest: pd.DataFrame, class_names: Sequence[str]) -> list[ImageContext]:
    """The :class:`ImageContext` of every manifest row, in order."""
    names = tuple(class_names)
    return [ImageContext(str(image_id), str(label), names, excluded)
            for image_id, label, excluded in zip(manifest["image_id"], manifest["label"],
                                                 excluded_words(manifest), strict=True)]


def crop_boxes(manifest: pd.DataFrame) -> list[list[float] | None]:
    """Each row's ``query_box`` (x1, y1, x2, y2 in the stored pixel grid; revisited Oxford /
    Paris queries), or None: the box an image is cut to before anything else."""
    boxes = manifest["query_box"] if "query_box" in manifest else [None] * len(manifest)
    return [json.loads(box) if isinstance(box, str) and box else None for box in boxes]


class ManifestImages:
    """Map-style dataset over manifest rows: load (cut to the row's ``query_box`` when it has
    one) -> manipulate -> preprocess.

    Never raises: an unreadable image or one the manipulation declines carries a skip reason,
    so one broken file cannot stop a stage of 50,000 images; a manipulation that raises on a
    valid image carries the failure, which the runner turns into the stage's error (raising in
    a DataLoader worker or a Ray task would bury it in their wrappers). ``class_names`` (what a
    context-aware manipulation picks words from) defaults to the manifest's sorted labels.
    With ``constructed`` (the manipulation's construction step, computed once per dataset)
    images come from there instead of being decoded; ``draft`` is
    :func:`cliprobe.images.load_rgb`'s reduced-scale JPEG decoding (opt-in).
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        image_root: Path,
        transform: ImageStep,
        preprocess: Callable[[Image.Image], Any],
        class_names: Sequence[str] | None = None,
        constructed: Any | None = None,
        draft: int | None = None,
    ) -> None:
        self.image_root = str(image_root)
        self.paths = [str(image_root / p) for p in manifest["path"]]
        # revisited Oxford / Paris: a query is its bounding box, cut before anything else
        self.crop_boxes = crop_boxes(manifest)
        self.image_ids = list(manifest["image_id"])
        self.labels = [str(label) for label in manifest["label"]]
        self.class_names = (tuple(class_names) if class_names is not None
                            else tuple(sorted(set(self.labels))))
        self.excluded = excluded_words(manifest)
        self.transform = transform
        self.preprocess = preprocess
        self.constructed = constructed
        self.draft = draft

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> Item:
        try:
            image = (load_rgb(self.paths[position], self.crop_boxes[position], self.draft)
                     if self.constructed is None else self.constructed.image(position))
        except ImageSkipped as skipped:
            return Item(position, None, skipped.reason)
        context = ImageContext(self.image_ids[position], self.labels[position], self.class_names,
                               self.excluded[position], self.image_root)
        try:
            result = (self.transform(image, context) if self.constructed is None
                      else self.transform(image, context, constructed=True))
        except ManipulationNotApplicable as declined:
            return Item(position, None, f"manipulation not applicable: {declined}",
                        skip_kind=NOT_APPLICABLE)
        except Exception as error:  # reported by the caller, which stops the stage
            return Item(position, None, None, failure=_describe_error(error))
        if not isinstance(result, Manipulated):
            result = Manipulated(result)
        manipulated = result.image if result.image.mode == "RGB" else result.image.convert("RGB")
        info = json.dumps(result.info, sort_keys=True) if result.info else ""
        return Item(position, self.preprocess(manipulated), None, info)


def collate_items(items: Sequence[Item]) -> list[Item]:
    """Keep items as a list: the encoder stacks the tensors of the usable ones."""
    return list(items)
