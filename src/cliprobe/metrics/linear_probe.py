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


# --- the literature protocol (CLIP paper, appendix A.3) -----------------------------------------

#: Where the CLIP paper's search over the L2 penalty λ (= 1 / C) starts: 10^-6, 10^-4, ..., 10^6.
LITERATURE_START = tuple(float(e) for e in range(-6, 7, 2))
#: ... and its resolution: 8 steps per decade of λ.
LITERATURE_STEP = 1.0 / 8.0


@dataclass(frozen=True)
class LiteratureProbe:
    """A probe fitted by the literature protocol, refitted on train + validation."""

    model: LogisticRegression
    #: the chosen C (= 1 / λ)
    C: float
    #: validation accuracy of every C tried (C -> accuracy), in the order tried
    validation_accuracy: dict[float, float]
    n_train: int
    n_validation: int


def _validation_accuracy(log_lambda: float, train: tuple[np.ndarray, np.ndarray],
                         validation: tuple[np.ndarray, np.ndarray], max_iter: int) -> float:
    model = LogisticRegression(C=10.0 ** -log_lambda, max_iter=max_iter)
    model.fit(*train)
    return float(model.score(*validation))


def fit_literature_probe(
    train_embeddings: np.ndarray,
    train_labels: Sequence[str] | np.ndarray,
    validation_embeddings: np.ndarray,
    validation_labels: Sequence[str] | np.ndarray,
    *,
    max_iter: int = 1000,
) -> LiteratureProbe:
    """The CLIP paper's linear probe: scikit-learn's L-BFGS logistic regression (1,000
    iterations at most), its L2 penalty λ chosen on the validation split by a parametric binary
    search that starts at λ = 10^-6, 10^-4, ..., 10^6 and halves the interval around the best λ
    until it reaches 8 steps per decade; then refitted on train + validation with that λ.

    Among λ with equal validation accuracy the larger one (the stronger penalty) wins, so
    equal inputs always give the same probe.
    """
    train = (np.asarray(train_embeddings, dtype=np.float64), np.asarray(train_labels))
    validation = (np.asarray(validation_embeddings, dtype=np.float64),
                  np.asarray(validation_labels))
    if len(np.unique(train[1])) < 2:
        raise DataError("the linear probe needs at least two classes in its train split")
    if len(validation[1]) == 0:
        raise DataError("the linear probe needs a non-empty validation split")
    tried: dict[float, float] = {}

    def score(log_lambda: float) -> float:
        key = round(log_lambda, 6)
        if key not in tried:
            tried[key] = _validation_accuracy(key, train, validation, max_iter)
        return tried[key]

    def best(candidates: Sequence[float]) -> float:
        # the largest accuracy; among equals the largest λ (the simplest model)
        return max(candidates, key=lambda x: (score(x), x))

    centre = best(LITERATURE_START)
    step = 2.0
    while step > LITERATURE_STEP:
        step /= 2.0
        centre = best([centre - step, centre, centre + step])
    chosen_c = 10.0 ** -round(centre, 6)
    model = LogisticRegression(C=chosen_c, max_iter=max_iter)
    model.fit(np.concatenate([train[0], validation[0]]),
              np.concatenate([train[1], validation[1]]))
    return LiteratureProbe(
        model=model, C=chosen_c,
        validation_accuracy={10.0 ** -k: v for k, v in tried.items()},
        n_train=len(train[1]), n_validation=len(validation[1]))


def validation_split(
    labels: Sequence[str] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of a seeded stratified split of ``labels``: the
    validation split of datasets that publish none (CLIP paper: "we split the training
    dataset"). Classes with a single image stay in train."""
    targets = np.asarray(labels)
    positions = np.arange(len(targets))
    classes, counts = np.unique(targets, return_counts=True)
    single = np.isin(targets, classes[counts < 2])
    if (~single).sum() < 2:
        raise DataError("the train split is too small to hold out a validation split")
    try:
        train_rows, validation_rows = train_test_split(
            positions[~single], test_size=fraction, random_state=seed,
            stratify=targets[~single])
    except ValueError as error:
        raise DataError(f"cannot hold out a stratified validation split of {fraction:g} from "
                        f"{len(targets)} train images of {len(classes)} classes ({error})"
                        ) from None
    return np.sort(np.concatenate([train_rows, positions[single]])), np.sort(validation_rows)
