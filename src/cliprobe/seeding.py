"""Per-image random number generators that depend only on (seed, image id, manipulation).

Never on process state, worker assignment or iteration order: the same cell gives the same
pixels whether it runs on one process, four DataLoader workers or a Ray cluster.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(global_seed: int, *keys: str) -> int:
    """A 64-bit seed from the global seed and any number of string keys (stable across runs)."""
    digest = hashlib.sha256(repr((int(global_seed), *keys)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def image_rng(global_seed: int, image_id: str, manipulation: str) -> np.random.Generator:
    """The generator a manipulation uses for one image."""
    return np.random.default_rng(derive_seed(global_seed, image_id, manipulation))


def legacy_seed(global_seed: int, image_id: str, manipulation: str) -> int:
    """A 32-bit seed for libraries that use numpy's global ``np.random`` state."""
    return derive_seed(global_seed, image_id, manipulation, "legacy") % (2**32)
