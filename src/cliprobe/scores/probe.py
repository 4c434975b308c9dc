"""Linear probes as cell scores, fitted once in the original cell and evaluated on every
manipulation's embeddings:

- seed 002's within-split probe (``probe_accuracy``): fitted on part of the clean gallery,
  evaluated on the held-out images;
- the literature protocol (``probe_official_accuracy``, CLIP paper appendix A.3): fitted on the
  dataset's official train split with C chosen on a validation split, evaluated on every image
  of the evaluated (test) split; skipped, with the reason, for datasets without a train split.

The fitted probe is stored as plain arrays (``probe.npz``: coef, intercept, classes, test
image ids), never pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cliprobe.config.schema import ProbeTrainConfig
from cliprobe.errors import DataError
from cliprobe.io.atomic import atomic_path
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.estimates import Estimator

PROBE_FILE = "probe.npz"


def fit_and_save(
    gallery: EmbeddingTable, seed: int, test_fraction: float, output: Path,
    estimate: Estimator,
) -> dict[str, Any]:
    """Fit the probe on the clean gallery, save it, and return its clean metrics (or why not)."""
    from cliprobe.metrics.linear_probe import fit_linear_probe  # scikit-learn: seconds to import

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


# --- the literature protocol: official train split -> C on validation -> test split ------------

OFFICIAL_PROBE_FILE = "probe_official.npz"
OFFICIAL_PROTOCOL = ("CLIP paper (appendix A.3): L-BFGS logistic regression on the official "
                     "train split, L2 penalty chosen on the validation split by a parametric "
                     "binary search (10^-6..10^6, 8 steps per decade), refitted on train + "
                     "validation, tested on the evaluated (official test) split")


def _skip(output: Path, reason: str) -> dict[str, Any]:
    # an (empty) probe file still exists, so the manipulated cells' dependency is met
    with atomic_path(output) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, skipped=np.asarray(reason))
    return {"skipped": reason}


def fit_official_and_save(
    train: EmbeddingTable, train_splits: dict[str, str], test: EmbeddingTable,
    settings: ProbeTrainConfig | None, output: Path, estimate: Estimator,
) -> dict[str, Any]:
    """Fit the literature probe on the official train split, save it, score the test split.

    ``train_splits`` maps each train image id to ``train`` or ``val`` (the official validation
    split, when the dataset has one; else a seeded stratified ``val_fraction`` of the train
    split is held out). Returns the record of what was done, or why it was skipped.
    """
    # scikit-learn: seconds to import, so only where a probe is fitted
    from cliprobe.metrics.linear_probe import fit_literature_probe, validation_split

    if settings is None or len(train) == 0:
        reason = (train.metadata.get("probe_train") if isinstance(
            train.metadata.get("probe_train"), str) else None) or (
            "no official train split configured (dataset.<name>.probe_train is null)")
        return _skip(output, reason)
    labels = train.labels.astype(str)
    roles = np.array([train_splits.get(str(i), "train") for i in train.image_ids])
    try:
        if (roles == "val").any():
            fit_rows, val_rows = np.flatnonzero(roles == "train"), np.flatnonzero(roles == "val")
            validation = "the official validation split"
        else:
            fit_rows, val_rows = validation_split(labels, settings.val_fraction, settings.seed)
            validation = f"a seeded stratified {settings.val_fraction:g} of the train split"
        result = fit_literature_probe(train.vectors[fit_rows], labels[fit_rows],
                                      train.vectors[val_rows], labels[val_rows])
    except DataError as error:
        return _skip(output, str(error))
    model = result.model
    with atomic_path(output) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, coef=model.coef_, intercept=model.intercept_,
                 classes=np.asarray(model.classes_, dtype=str), C=np.asarray(result.C))
    correct = (model.predict(test.vectors.astype(np.float64)) == test.labels.astype(str))
    return {"protocol": OFFICIAL_PROTOCOL, "C": result.C, "validation": validation,
            "n_train": result.n_train, "n_validation": result.n_validation,
            "validation_accuracy": {f"{c:.6g}": a for c, a in
                                    result.validation_accuracy.items()},
            "test": estimate("probe_official_accuracy", correct.astype(np.float64))}


def skipped_reason(probe_file: Path) -> str | None:
    """Why the stored probe was skipped (the reason the original cell recorded), or None when a
    probe was fitted (or the file is absent)."""
    if not probe_file.is_file():
        return None
    with np.load(probe_file, allow_pickle=False) as stored:
        return str(stored["skipped"]) if "skipped" in stored.files else None


def evaluate_official(
    probe_file: Path, queries: EmbeddingTable, estimate: Estimator
) -> dict[str, Any] | None:
    """Accuracy of the stored literature probe on every query (none of them was trained on);
    None when there is no probe."""
    if not probe_file.is_file():
        return None
    with np.load(probe_file, allow_pickle=False) as stored:
        probe = {key: stored[key] for key in stored.files}
    if "coef" not in probe or len(queries) == 0:
        return None
    correct = predict(probe, queries.vectors) == queries.labels.astype(str)
    return estimate("probe_official_accuracy", correct.astype(np.float64))
