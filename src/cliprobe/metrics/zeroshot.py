"""Zero-shot classification (SPEC §2) and typographic-attack metrics (SPEC §4).

Pure functions over arrays, plus :func:`encode_text_fn`, the one place that touches a model.
The definitions follow LAION's CLIP_benchmark (``clip_benchmark/metrics/
zeroshot_classification.py``), so the numbers are comparable:

- classifier: per class, encode every prompt, L2-normalise each, average, L2-normalise again;
  the class vectors are the columns of a (D, C) matrix W;
- logits: ``scale · normalize(x) @ W (+ bias)`` with the model's own logit scale (100 for
  OpenAI's CLIP; CLIP_benchmark always uses 100, which changes probabilities, not accuracies)
  and bias (SigLIP); probabilities: their softmax (a scalar bias cancels in it);
- acc@k: fraction of images whose true class is among the k largest logits; NaN when there are
  fewer than k classes (CLIP_benchmark reports acc@5 as NaN under 5 classes);
- mean per-class recall: the recall of each class present in the targets, averaged
  (= scikit-learn's ``balanced_accuracy_score``, which CLIP_benchmark calls).

Class indices are ints in ``[0, C)``; a *word class index* of -1 means "the written word is
not one of the classes" (or nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cliprobe.models.loader import LoadedModel

#: list of N texts -> (N, D) float32 array, rows L2-normalised
EncodeText = Callable[[list[str]], np.ndarray]

LOGIT_SCALE = 100.0
NO_CLASS = -1


def l2_normalise(vectors: np.ndarray, axis: int = -1) -> np.ndarray:
    """``vectors`` divided by their L2 norm along ``axis`` (zero vectors stay zero)."""
    norms = np.linalg.norm(vectors, axis=axis, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def build_classifier(
    class_names: Sequence[str],
    templates: Sequence[str] | Mapping[str, Sequence[str]],
    encode_text: EncodeText,
) -> np.ndarray:
    """The zero-shot classifier W, (D, C) float32, each column L2-normalised.

    ``templates`` is either a list of templates with one ``{}`` (filled with each class name),
    or a mapping class name -> that class's own prompts (free-text descriptions). All prompts
    go to ``encode_text`` in one call, so it can batch them.
    """
    if not class_names:
        raise ValueError("build_classifier needs at least one class")
    texts_per_class: list[list[str]] = []
    for name in class_names:
        if isinstance(templates, Mapping):
            if name not in templates:
                raise ValueError(f"no prompts for class {name!r}")
            texts = [str(text) for text in templates[name]]
        else:
            texts = [template.format(name) for template in templates]
        if not texts:
            raise ValueError(f"no prompts for class {name!r}")
        texts_per_class.append(texts)
    flat = [text for texts in texts_per_class for text in texts]
    embeddings = np.asarray(encode_text(flat), dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(flat):
        raise ValueError(
            f"encode_text returned shape {embeddings.shape} for {len(flat)} texts; "
            "expected (N, D)"
        )
    embeddings = l2_normalise(embeddings)
    columns = []
    start = 0
    for texts in texts_per_class:
        columns.append(embeddings[start:start + len(texts)].mean(axis=0))
        start += len(texts)
    return l2_normalise(np.stack(columns, axis=1), axis=0).astype(np.float32)


def logits(
    image_embeddings: np.ndarray, classifier: np.ndarray, scale: float = LOGIT_SCALE,
    bias: float | None = None,
) -> np.ndarray:
    """``scale · normalize(image_embeddings) @ classifier (+ bias)``: (N, D) x (D, C) -> (N, C)
    float32. ``scale`` and ``bias`` are the model's own (``logit_scale.exp()``,
    ``logit_bias``; SPEC §2)."""
    images = l2_normalise(np.asarray(image_embeddings, dtype=np.float32))
    out = np.float32(scale) * images @ np.asarray(classifier, dtype=np.float32)
    if bias is not None:
        out = out + np.float32(bias)
    return out.astype(np.float32)


def softmax(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (numerically stable), float64, rows summing to 1."""
    shifted = np.asarray(values, dtype=np.float64)
    shifted = shifted - shifted.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _check_targets(targets: np.ndarray, n_classes: int, what: str = "targets") -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"{what} must be a 1-D integer array of class indices")
    if targets.size and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(f"{what} must be class indices in [0, {n_classes})")
    return targets


def top_k_predictions(logits_: np.ndarray, k: int) -> np.ndarray:
    """The k classes with the largest logits per row, best first: (N, C) -> (N, k) int64.

    Ties go to the lower class index (a stable sort), so results do not depend on the platform.
    """
    return np.argsort(-np.asarray(logits_), axis=1, kind="stable")[:, :k]


def top_k_accuracy(logits_: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Fraction of rows whose target is among the top ``k`` logits; NaN if C < k or N = 0.

    ``logits_`` (N, C), ``targets`` (N,) ints in [0, C).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    scores = np.asarray(logits_)
    n_images, n_classes = scores.shape
    targets = _check_targets(targets, n_classes)
    if len(targets) != n_images:
        raise ValueError(f"{len(targets)} targets for {n_images} rows of logits")
    if n_classes < k or n_images == 0:
        return float("nan")
    hits = (top_k_predictions(scores, k) == targets[:, None]).any(axis=1)
    return float(hits.mean())


def mean_per_class_recall(
    predictions: np.ndarray, targets: np.ndarray, n_classes: int
) -> float:
    """Balanced accuracy: per class present in ``targets``, the fraction predicted as it,
    averaged over those classes (classes absent from the targets are ignored, as in
    scikit-learn's ``balanced_accuracy_score``). ``predictions``, ``targets``: (N,) ints in
    [0, n_classes). NaN for N = 0.
    """
    predictions = _check_targets(predictions, n_classes, "predictions")
    targets = _check_targets(targets, n_classes)
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if len(targets) == 0:
        return float("nan")
    present = np.unique(targets)
    recalls = [np.mean(predictions[targets == c] == c) for c in present]
    return float(np.mean(recalls))


@dataclass(frozen=True)
class AttackSuccess:
    """Attack success rate and how many images it is over."""

    #: fraction of scored images predicted as their written word's class (NaN if none scored)
    rate: float
    #: images whose written word is a class
    n_scored: int
    #: images left out because their word is not a class (or nothing is written)
    n_excluded: int


def attack_success_rate(
    predictions: np.ndarray, word_class_indices: np.ndarray
) -> AttackSuccess:
    """Fraction of attacked images predicted as the class of the word written on them.

    ``predictions`` (N,) predicted class indices; ``word_class_indices`` (N,) the written
    word's class index, or -1 when the word is not a class (those rows are excluded and counted
    in ``n_excluded``). Select the rows first when some must not count (e.g. images whose word
    is their own class).
    """
    predictions = np.asarray(predictions)
    words = np.asarray(word_class_indices)
    if predictions.shape != words.shape or predictions.ndim != 1:
        raise ValueError("predictions and word_class_indices must be 1-D arrays of equal length")
    scored = words >= 0
    n_scored = int(scored.sum())
    rate = float(np.mean(predictions[scored] == words[scored])) if n_scored else float("nan")
    return AttackSuccess(rate=rate, n_scored=n_scored, n_excluded=int(len(words) - n_scored))


def probability_on_word(
    probabilities: np.ndarray, word_class_indices: np.ndarray
) -> np.ndarray:
    """Per image, the probability the classifier puts on the written word's class.

    ``probabilities`` (N, C) softmax rows; ``word_class_indices`` (N,), -1 = not a class.
    Returns (N,) float64 with NaN where the word is not a class (average with ``np.nanmean``).
    The probability mass on the word among *all* classes; seed 000's two-way number is
    :func:`two_way_word_probability`.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    words = np.asarray(word_class_indices)
    if words.ndim != 1 or probabilities.ndim != 2 or len(words) != len(probabilities):
        raise ValueError("probabilities must be (N, C) and word_class_indices (N,)")
    if words.size and words.max() >= probabilities.shape[1]:
        raise ValueError(f"word class indices must be < C = {probabilities.shape[1]} or -1")
    out = np.full(len(words), np.nan)
    scored = words >= 0
    out[scored] = probabilities[np.flatnonzero(scored), words[scored]]
    return out


def two_way_word_probability(
    logits_: np.ndarray, true_class_indices: np.ndarray, word_class_indices: np.ndarray
) -> np.ndarray:
    """Seed 000's number: per image, the probability of the written word in the two-way
    comparison of the true object class against the word (softmax over those two logits).

    ``logits_`` (N, C); ``true_class_indices``, ``word_class_indices`` (N,) ints, -1 = not a
    class. Returns (N,) float64, NaN where either is not a class or both are the same class.
    """
    scores = np.asarray(logits_, dtype=np.float64)
    true, words = np.asarray(true_class_indices), np.asarray(word_class_indices)
    if scores.ndim != 2 or true.shape != words.shape or len(true) != len(scores):
        raise ValueError("logits must be (N, C) and the class indices (N,)")
    out = np.full(len(words), np.nan)
    scored = (true >= 0) & (words >= 0) & (true != words)
    rows = np.flatnonzero(scored)
    # softmax([l_true, l_word])[word] = 1 / (1 + exp(l_true - l_word))
    gap = scores[rows, true[scored]] - scores[rows, words[scored]]
    out[scored] = 1.0 / (1.0 + np.exp(gap))
    return out


def class_indices(names: Sequence[str | None], class_names: Sequence[str]) -> np.ndarray:
    """Map names to indices into ``class_names``; -1 for None or names that are not classes."""
    index = {name: i for i, name in enumerate(class_names)}
    return np.array(
        [index.get(name, NO_CLASS) if name is not None else NO_CLASS for name in names],
        dtype=np.int64,
    )


def encode_text_fn(loaded_model: LoadedModel, batch_size: int = 256) -> EncodeText:
    """A function encoding texts with the model's text tower: list[str] -> (N, D) float32,
    rows L2-normalised; tokenised with the model's own tokenizer, in batches of
    ``batch_size``, under ``torch.inference_mode``.
    """
    import torch

    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    model, tokenizer, device = loaded_model.model, loaded_model.tokenizer, loaded_model.device

    def encode(texts: list[str]) -> np.ndarray:
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = tokenizer(list(texts[start:start + batch_size])).to(device)
                features = model.encode_text(tokens).float()
                features = torch.nn.functional.normalize(features, dim=-1)
                chunks.append(features.cpu().numpy())
        if not chunks:
            return np.zeros((0, loaded_model.embed_dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    return encode


def model_logit_parameters(loaded_model: LoadedModel) -> dict[str, float | None]:
    """The model's own ``logit_scale`` (exp of its learned log-scale; 100 for OpenAI's CLIP,
    1/0.07 for random weights) and ``logit_bias`` (SigLIP; None for CLIP)."""
    import torch

    model = loaded_model.model
    with torch.no_grad():
        scale = float(model.logit_scale.exp()) if hasattr(model, "logit_scale") else LOGIT_SCALE
        bias = getattr(model, "logit_bias", None)
        return {"logit_scale": scale, "logit_bias": None if bias is None else float(bias)}
