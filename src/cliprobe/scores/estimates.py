"""Seeded bootstrap estimates keyed by cell and metric."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cliprobe.metrics.bootstrap import bootstrap_mean
from cliprobe.seeding import derive_seed


@dataclass(frozen=True)
class Estimator:
    """Bootstrap settings of one cell: every metric gets its own stable seed."""

    global_seed: int
    cell_key: str
    resamples: int
    confidence: float

    def __call__(self, name: str, values: np.ndarray, resampled: str = "images") -> dict[str, Any]:
        """Mean of ``values`` (NaNs dropped) with its interval, as a JSON-ready dict."""
        data = np.asarray(values, dtype=np.float64)
        data = data[~np.isnan(data)]
        seed = derive_seed(self.global_seed, self.cell_key, name) % (2**32)
        estimate = bootstrap_mean(data, self.resamples, self.confidence, seed, resampled)
        # NaN (nothing to average, e.g. acc@5 with fewer than 5 classes) is written as null
        as_dict = {key: (None if isinstance(value, float) and math.isnan(value) else value)
                   for key, value in estimate.as_dict().items()}
        return {**as_dict, "n": int(data.size)}
