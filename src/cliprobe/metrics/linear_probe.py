"""Linear probe (seed 002): logistic regression on clean CLIP embeddings.

A seeded, stratified train/test split of the clean embeddings; the inverse regularisation
strength C chosen by stratified k-fold cross-validation on the training part over a log grid;
the probe refitted on the whole training part with that C. Train and test accuracy say how
linearly separable the classes are; :func:`evaluate_probe` then scores the same probe on a
manipulation's embeddings (is the probe robust, not only zero-shot?). Evaluate it on the
held-out images (``ProbeResult.test_index``) to keep training images out of the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from cliprobe.errors import DataError

#: C values tried by default: 10^-3 ... 10^3, one per decade.
DEFAULT_C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 3, 7))


@dataclass(frozen=True)
class ProbeResult:
    """A fitted probe and how well it does on clean embeddings."""

    model: LogisticRegression
    train_accuracy: float
    test_accuracy: float
    #: the C chosen by cross-validation
    C: float
    #: mean cross-validated accuracy per C tried
    cv_accuracy: dict[float, float]
    #: row positions (into the embeddings passed in) of the training and test images
    train_index: np.ndarray = field(repr=False)
    test_index: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class ProbeEvaluation:
    """A probe's accuracy on some embeddings, with its per-image predictions."""

    accuracy: float
    predictions: np.ndarray = field(repr=False)


def fit_linear_probe(
    embeddings: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    cv_folds: int = 5,
    max_iter: int = 1000,
) -> ProbeResult:
    """Fit a logistic-regression probe on ``embeddings`` (N, D) with class ``labels`` (N,).

    The split (``test_fraction`` of each class held out) and the CV folds are seeded by
    ``seed``; the same inputs give the same probe. ``cv_folds`` is lowered to the size of the
    smallest class in the training part (at least 2). Raises :class:`DataError` when a class has
    too few images to appear in both parts.
    """
    features = np.asarray(embeddings, dtype=np.float64)
    targets = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(targets):
        raise ValueError("embeddings must be (N, D) with one label per row")
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be in (0, 1)")
    classes, counts = np.unique(targets, return_counts=True)
    if len(classes) < 2:
        raise DataError("the linear probe needs at least two classes")
    positions = np.arange(len(targets))
    try:
        train_index, test_index = train_test_split(
            positions, test_size=test_fraction, random_state=seed, stratify=targets
        )
    except ValueError as error:
        raise DataError(
            f"cannot split {len(targets)} images of {len(classes)} classes (smallest: "
            f"{counts.min()} images) into a stratified train/test split with test_fraction "
            f"{test_fraction} ({error}); use classes with more images"
        ) from None
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    smallest_train_class = int(np.unique(targets[train_index], return_counts=True)[1].min())
    folds = min(cv_folds, smallest_train_class)
    if folds < 2:
        raise DataError(
            "the linear probe's cross-validation needs at least 2 training images per class; "
            "use classes with more images or a smaller test_fraction"
        )
    search = GridSearchCV(
        LogisticRegression(max_iter=max_iter),
        {"C": [float(c) for c in c_grid]},
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        scoring="accuracy",
        refit=True,
        n_jobs=1,
    )
    search.fit(features[train_index], targets[train_index])
    model: LogisticRegression = search.best_estimator_
    cv_accuracy = {
        float(c): float(score)
        for c, score in zip(search.cv_results_["param_C"], search.cv_results_["mean_test_score"],
                            strict=True)
    }
    return ProbeResult(
        model=model,
        train_accuracy=float(model.score(features[train_index], targets[train_index])),
        test_accuracy=float(model.score(features[test_index], targets[test_index])),
        C=float(search.best_params_["C"]),
        cv_accuracy=cv_accuracy,
        train_index=train_index,
        test_index=test_index,
    )


def evaluate_probe(
    model: LogisticRegression, embeddings: np.ndarray, labels: Sequence[str] | np.ndarray
) -> ProbeEvaluation:
    """Accuracy of a fitted probe on ``embeddings`` (N, D) with true ``labels`` (N,).

    Labels the probe never saw count as errors. NaN accuracy for N = 0.
    """
    features = np.asarray(embeddings, dtype=np.float64)
    targets = np.asarray(labels)
    if len(features) != len(targets):
        raise ValueError("one label per embedding row is needed")
    if len(targets) == 0:
        return ProbeEvaluation(float("nan"), np.asarray([], dtype=model.classes_.dtype))
    predictions = model.predict(features)
    return ProbeEvaluation(float(np.mean(predictions == targets)), predictions)
