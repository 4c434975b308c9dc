"""Zero-shot and typographic-attack scores of one cell (SPEC §2, §4).

Per image: softmax probabilities over the classifier's classes (logits ``s · cos + b`` with the
model's own logit scale s and bias b, recorded in the classifier file), the prediction, whether
the true class is top-1 / top-5, and, when a word was written on the image (recorded by the
manipulation, or given by the dataset for real typographic photos), whether the prediction is
the word's class (attack success) and the probability of the word: ``word_probability`` is seed
000's two-way object-vs-word probability, ``word_probability_all_classes`` the word's share of
the probability over all classes.

Images without a class (a caption dataset's, ``label == ""``; the classifier's classes are
then the dataset's vocabulary) have no accuracy: those metrics are left out, the attack metrics
remain (the prediction among the vocabulary is or is not the written word; with no object to
compare it with, only the all-class word probability is defined).

:func:`word_search_scores`: for each image a manipulation wrote a word on, does the caption a
search for that word would use (the classifier's word query, "a photo of a {word}") score the
attacked image above its clean self? The typographic question of image <-> text retrieval:
writing a word makes an image findable as something it is not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cliprobe.io.classifier import Classifier
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics import zeroshot as zs
from cliprobe.scores.estimates import Estimator

TOP_K = 5


def written_words(
    queries: EmbeddingTable, rows: np.ndarray, manifest: pd.DataFrame
) -> list[str | None]:
    """The class name written on each image: the manipulation's record, else the dataset's."""
    from_dataset: dict[str, str] = {}
    if "word_label" in manifest:
        for image_id, word in zip(manifest["image_id"], manifest["word_label"], strict=True):
            if isinstance(word, str) and word:
                from_dataset[str(image_id)] = word
    words: list[str | None] = []
    for row in rows:
        recorded = queries.info(int(row)).get("word_label")
        words.append(recorded or from_dataset.get(str(queries.image_ids[row])))
    return words


def logit_parameters(classifier: Classifier) -> dict[str, float | None]:
    """The model's logit scale and bias recorded with the classifier (100 and none for files
    written before they were recorded)."""
    scale = classifier.metadata.get("logit_scale")
    return {"scale": zs.LOGIT_SCALE if scale is None else float(scale),
            "bias": classifier.metadata.get("logit_bias")}


def zeroshot_scores(
    queries: EmbeddingTable,
    rows: np.ndarray,
    classifier: Classifier,
    manifest: pd.DataFrame,
    estimate: Estimator,
) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray, dict[str, Any]]:
    """(metrics, per-image columns, probabilities (N, C) float32, metrics by condition)."""
    names = classifier.class_names
    logits = zs.logits(queries.vectors[rows], classifier.weights, **logit_parameters(classifier))
    probabilities = zs.softmax(logits).astype(np.float32)
    labels = [str(label) for label in queries.labels[rows]]
    labelled = np.array([bool(label) for label in labels], dtype=bool)
    targets = zs.class_indices(labels, names)
    predictions = np.argmax(logits, axis=1)
    ranks = np.argsort(-logits, axis=1, kind="stable")
    correct = np.where(labelled, (predictions == targets).astype(np.float64), np.nan)
    correct_at_5 = (np.where(labelled, (ranks[:, :TOP_K] == targets[:, None]).any(axis=1), np.nan)
                    if len(names) >= TOP_K else np.full(len(rows), np.nan))
    p_true = np.where(labelled, probabilities[np.arange(len(rows)), np.maximum(targets, 0)],
                      np.nan)
    words = written_words(queries, rows, manifest)
    word_index = zs.class_indices(words, names)
    attacked = np.array([w is not None and w != label for w, label in zip(words, labels,
                                                                         strict=True)])
    success = np.where(attacked & (word_index >= 0),
                       (predictions == word_index).astype(np.float64), np.nan)
    p_word_all = np.where(attacked, zs.probability_on_word(probabilities, word_index), np.nan)
    p_word = np.where(attacked, zs.two_way_word_probability(logits, targets, word_index), np.nan)

    metrics: dict[str, Any] = {}
    if labelled.any():
        recall_by_class = (pd.Series(correct[labelled])
                           .groupby(np.asarray(labels)[labelled]).mean())
        metrics.update({
            "zeroshot_acc1": estimate("zeroshot_acc1", correct),
            "zeroshot_acc5": estimate("zeroshot_acc5", correct_at_5),
            "zeroshot_mean_per_class_recall": estimate(
                "zeroshot_mean_per_class_recall", recall_by_class.to_numpy(), "classes"),
        })
    if attacked.any():
        metrics["attack_success_rate"] = estimate("attack_success_rate", success[attacked])
        if (attacked & labelled).any():
            metrics["attacked_true_class_acc1"] = estimate("attacked_true_class_acc1",
                                                           correct[attacked])
        if np.isfinite(p_word[attacked]).any():  # two-way needs the image's own class
            metrics["word_probability"] = estimate("word_probability", p_word[attacked])
        metrics["word_probability_all_classes"] = estimate("word_probability_all_classes",
                                                           p_word_all[attacked])
    per_image = pd.DataFrame({
        "zeroshot_predicted": [names[i] for i in predictions],
        "zeroshot_correct": correct,
        "zeroshot_correct_at_5": correct_at_5,
        "p_true": p_true,
        "written_word": [w or "" for w in words],
        "attack_success": success,
        "p_word": p_word,
        "p_word_all_classes": p_word_all,
    })
    by_condition: dict[str, Any] = {}
    if "condition" in manifest:
        condition_of = dict(zip(manifest["image_id"].astype(str), manifest["condition"],
                                strict=True))
        conditions = np.array([str(condition_of.get(str(queries.image_ids[r]), ""))
                               for r in rows])
        for condition in sorted(set(conditions) - {""}):
            mask = conditions == condition
            entry = {"n_images": int(mask.sum()),
                     "zeroshot_acc1": estimate(f"{condition}/acc1", correct[mask])}
            if (mask & attacked).any():
                entry["attack_success_rate"] = estimate(f"{condition}/attack_success",
                                                        success[mask & attacked])
                entry["word_probability"] = estimate(f"{condition}/word_probability",
                                                     p_word[mask & attacked])
                entry["word_probability_all_classes"] = estimate(
                    f"{condition}/word_probability_all_classes", p_word_all[mask & attacked])
            by_condition[condition] = entry
    return metrics, per_image, probabilities, by_condition


def word_search_scores(
    queries: EmbeddingTable,
    rows: np.ndarray,
    clean_vectors: np.ndarray,
    classifier: Classifier,
    estimate: Estimator,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """(metrics, per-image columns) of the written-word search.

    For every query row whose manipulation recorded a written word (``word_label`` in its info)
    that is a classifier class with a stored word query: 1 when ``cos(q_w, attacked) >
    cos(q_w, clean)`` (a search for the word ranks the attacked image above its clean self),
    else 0; NaN for the other rows. ``clean_vectors`` ``(len(rows), D)`` are the same images'
    clean embeddings. Also the similarity gain ``cos(q_w, attacked) - cos(q_w, clean)``.
    """
    empty = pd.DataFrame({"word_search_above_clean": np.full(len(rows), np.nan),
                          "word_search_gain": np.full(len(rows), np.nan)})
    if classifier.word_queries is None:
        return {}, empty
    index = {name: i for i, name in enumerate(classifier.class_names)}
    recorded = [queries.info(int(row)).get("word_label") for row in rows]
    word_rows = np.array([index.get(str(w), -1) if w else -1 for w in recorded],
                         dtype=np.int64)
    scored = word_rows >= 0
    if not scored.any():
        return {}, empty
    word_vectors = classifier.word_queries[np.maximum(word_rows, 0)].astype(np.float64)
    attacked = np.einsum("nd,nd->n", word_vectors, queries.vectors[rows].astype(np.float64))
    clean = np.einsum("nd,nd->n", word_vectors, np.asarray(clean_vectors, dtype=np.float64))
    above = np.where(scored, (attacked > clean).astype(np.float64), np.nan)
    gain = np.where(scored, attacked - clean, np.nan)
    metrics = {"word_search_above_clean": estimate("word_search_above_clean", above),
               "word_search_gain": estimate("word_search_gain", gain)}
    return metrics, pd.DataFrame({"word_search_above_clean": above, "word_search_gain": gain})
