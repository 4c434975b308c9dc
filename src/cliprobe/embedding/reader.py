"""Read images of a manifest, manipulate and preprocess them (runs in DataLoader workers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from cliprobe.images import ImageSkipped, load_rgb
from cliprobe.manipulations.registry import Manipulation
from cliprobe.seeding import image_rng, legacy_seed

#: (image, image_id) -> manipulated image
ImageTransform = Callable[[Image.Image, str], Image.Image]


def manipulation_transform(
    manipulation: Manipulation[Any], params: Any, cell_name: str, global_seed: int
) -> ImageTransform:
    """Bind a registered manipulation to its params and to per-image seeds.

    The seed depends on (global seed, image id, cell name) only, so two cells that use the same
    function with different params draw independent randomness, and reruns draw the same.
    """

    def transform(image: Image.Image, image_id: str) -> Image.Image:
        if manipulation.uses_global_rng:
            np.random.seed(legacy_seed(global_seed, image_id, cell_name))
        return manipulation.apply(image, params, image_rng(global_seed, image_id, cell_name))

    return transform


@dataclass
class Item:
    """One manifest row after loading: a preprocessed tensor, or the reason it was skipped."""

    position: int
    tensor: Any | None
    skip_reason: str | None


class ManifestImages:
    """Map-style dataset over manifest rows: load -> manipulate -> preprocess.

    Never raises for a bad image: the item carries a skip reason instead, so one broken file
    cannot stop a stage of 50,000 images.
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        image_root: Path,
        transform: ImageTransform,
        preprocess: Callable[[Image.Image], Any],
    ) -> None:
        self.paths = [str(image_root / p) for p in manifest["path"]]
        self.image_ids = list(manifest["image_id"])
        self.transform = transform
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> Item:
        try:
            image = load_rgb(self.paths[position])
        except ImageSkipped as skipped:
            return Item(position, None, skipped.reason)
        try:
            manipulated = self.transform(image, self.image_ids[position])
        except Exception as error:
            return Item(position, None, f"manipulation failed: {type(error).__name__}: {error}")
        if manipulated.mode != "RGB":
            manipulated = manipulated.convert("RGB")
        return Item(position, self.preprocess(manipulated), None)


def collate_items(items: Sequence[Item]) -> list[Item]:
    """Keep items as a list: the encoder stacks the tensors of the usable ones."""
    return list(items)
