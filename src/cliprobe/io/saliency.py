"""A saliency cell's ``maps.npz``: maps, model views and the word's box, no pickles.

Arrays (N = images explained, ``s`` = ``map_side``):

- ``image_id``, ``reference_id`` (``""`` = none), ``second_role`` (word / competitor): (N,)
- ``classes``: (N, 2) object and second class names (``""`` = none)
- one array per method: (N, 2 views [reference, subject], 2 classes, s, s) float16, NaN where
  the view or class does not exist
- ``views``: (N, 2, D, D, 3) uint8, what the model sees of each view (zeros = none)
- ``box``: (N, s, s) float16, the written word's coverage of each map cell (zeros = none)
- ``meta``: JSON (methods with their params, Grad-CAM layer, provenance)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cliprobe.io.atomic import atomic_path


@dataclass
class SaliencyMaps:
    """The contents of ``maps.npz``."""

    image_ids: list[str]
    reference_ids: list[str]
    classes: np.ndarray
    second_roles: list[str]
    views: np.ndarray
    box: np.ndarray
    maps: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, map_side: int, display_side: int, meta: dict[str, Any]) -> SaliencyMaps:
        """No image (a cell with nothing to explain)."""
        return cls([], [], np.zeros((0, 2), dtype=str), [],
                   np.zeros((0, 2, display_side, display_side, 3), np.uint8),
                   np.zeros((0, map_side, map_side), np.float16), {}, meta)


def write_maps(path: Path, maps: SaliencyMaps) -> None:
    """Write ``maps.npz`` atomically (deterministic bytes: zip entries carry no time)."""
    arrays: dict[str, Any] = {
        "image_id": np.array(maps.image_ids, dtype=str),
        "reference_id": np.array(maps.reference_ids, dtype=str),
        "classes": np.asarray(maps.classes, dtype=str).reshape(len(maps.image_ids), 2),
        "second_role": np.array(maps.second_roles, dtype=str),
        "views": maps.views, "box": maps.box.astype(np.float16),
        "meta": np.array(json.dumps(maps.meta, sort_keys=True)),
    }
    for method, values in maps.maps.items():
        arrays[method] = values.astype(np.float16)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def read_maps(path: Path) -> SaliencyMaps:
    """Read ``maps.npz`` (``allow_pickle=False``); maps and box as float32."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        methods = [m for m in meta.get("methods", {}) if m in data.files]
        return SaliencyMaps(
            image_ids=[str(i) for i in data["image_id"]],
            reference_ids=[str(i) for i in data["reference_id"]], classes=data["classes"],
            second_roles=[str(r) for r in data["second_role"]], views=data["views"],
            box=data["box"].astype(np.float32),
            maps={m: data[m].astype(np.float32) for m in methods}, meta=meta)
