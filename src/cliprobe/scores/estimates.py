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

    def __call__(self, name: str, values: np.ndarray, resampled: str = "images",
                 weights: np.ndarray | None = None) -> dict[str, Any]:
        """Mean of ``values`` (NaNs dropped) with its interval, as a JSON-ready dict.

        ``weights``: a weighted mean resampling (value, weight) pairs together (see
        :func:`cliprobe.metrics.bootstrap.bootstrap_mean`); ``n`` is then the number of pairs.
        """
        data = np.asarray(values, dtype=np.float64)
        kept = ~np.isnan(data)
        data = data[kept]
        weight = None if weights is None else np.asarray(weights, dtype=np.float64)[kept]
        seed = derive_seed(self.global_seed, self.cell_key, name) % (2**32)
        estimate = bootstrap_mean(data, self.resamples, self.confidence, seed, resampled,
                                  weight)
        # NaN (nothing to average, e.g. acc@5 with fewer than 5 classes) is written as null
        as_dict = {key: (None if isinstance(value, float) and math.isnan(value) else value)
                   for key, value in estimate.as_dict().items()}
        return {**as_dict, "n": int(data.size)}
