"""Seed 002's linear probe as cell scores: fitted once on the clean gallery (the original
cell), then evaluated on every manipulation's embeddings of the held-out images.

The fitted probe is stored as plain arrays (``probe.npz``: coef, intercept, classes, test
image ids), never pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cliprobe.errors import DataError
from cliprobe.io.atomic import atomic_path
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics.linear_probe import fit_linear_probe
from cliprobe.scores.estimates import Estimator

PROBE_FILE = "probe.npz"


def fit_and_save(
    gallery: EmbeddingTable, seed: int, test_fraction: float, output: Path,
    estimate: Estimator,
) -> dict[str, Any]:
    """Fit the probe on the clean gallery, save it, and return its clean metrics (or why not)."""
    try:
        result = fit_linear_probe(gallery.vectors, gallery.labels.astype(str),
                                  test_fraction=test_fraction, seed=seed)
    except DataError as error:
        # an empty probe file still exists, so the manipulated cells' dependency is met
        save_skipped(output, str(error))
        return {"skipped": str(error)}
    model = result.model
    with atomic_path(output) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, coef=model.coef_, intercept=model.intercept_,
                 classes=np.asarray(model.classes_, dtype=str),
                 test_ids=np.asarray(gallery.image_ids[result.test_index], dtype=str))
    test_correct = (model.predict(gallery.vectors[result.test_index].astype(np.float64))
                    == gallery.labels[result.test_index].astype(str)).astype(np.float64)
    return {"C": result.C, "train_accuracy": result.train_accuracy,
            "n_train": len(result.train_index),
            "test": estimate("probe_accuracy", test_correct)}


def save_skipped(output: Path, reason: str) -> None:
    """An empty probe file recording why no probe was fitted."""
    with atomic_path(output) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, skipped=np.asarray(reason))


def predict(probe: dict[str, np.ndarray], vectors: np.ndarray) -> np.ndarray:
    """Class names predicted by a stored probe for ``(N, D)`` vectors."""
    scores = vectors.astype(np.float64) @ probe["coef"].T + probe["intercept"]
    if scores.shape[1] == 1:  # binary logistic regression: one column, positive = classes[1]
        return probe["classes"][(scores[:, 0] > 0).astype(int)]
    return probe["classes"][np.argmax(scores, axis=1)]


def evaluate_saved(
    probe_file: Path, queries: EmbeddingTable, estimate: Estimator
) -> dict[str, Any] | None:
    """Accuracy of the stored probe on ``queries``' held-out images; None without a probe."""
    if not probe_file.is_file():
        return None
    with np.load(probe_file, allow_pickle=False) as stored:
        probe = {key: stored[key] for key in stored.files}
    if "coef" not in probe:  # the probe could not be fitted on this dataset
        return None
    held_out = set(probe["test_ids"].tolist())
    rows = np.array([i for i, image_id in enumerate(queries.image_ids) if image_id in held_out],
                    dtype=np.int64)
    if len(rows) == 0:
        return None
    correct = (predict(probe, queries.vectors[rows]) == queries.labels[rows].astype(str))
    return estimate("probe_accuracy", correct.astype(np.float64))
