"""Ranking metrics over (possibly truncated) rankings: AP, mAP, mP@k, revisited Oxford/Paris.

A *ranking* is an ``(Q, R)`` integer array: row ``q`` lists gallery indices from best to worst
(:func:`~cliprobe.retrieval.exact.top_k` output, query-major). ``R`` is the full gallery size
for exact mAP; with a truncated ranking (``R < N``) relevant items that were not retrieved count
as never found (they add 0 to the AP sum but still count in its denominator), so the AP is a
lower bound of the full-ranking AP.

Two AP definitions are used, on purpose:

- :func:`average_precision` / :func:`same_class_average_precision`: the usual non-interpolated
  AP, the mean over relevant items of the precision at each relevant item's rank.
- :func:`revisited_map`: the revisited Oxford / Paris protocol (Radenović et al., CVPR 2018) with
  the AP of its reference evaluation code (``revisitop``, ``python/evaluate.py``): the area
  under the precision-recall step curve by trapezoids, each relevant item contributing the mean
  of the precision just *before* it (``j / p``, 1 at rank 0) and *at* it (``(j+1) / (p+1)``),
  times ``1 / n_relevant``; junk items are removed from the ranking first. Its mP@k is also the
  reference one: precision at ``min(k, position of the last retrieved positive)``. Use it to
  compare with published ROxford / RParis numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Protocol = Literal["easy", "medium", "hard"]
PROTOCOLS: tuple[str, ...] = ("easy", "medium", "hard")


# --------------------------------------------------------------------------------------------
# Non-interpolated AP over boolean relevance in rank order
# --------------------------------------------------------------------------------------------

def average_precisions(relevance: np.ndarray, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """Per-query AP ``(Q,)`` float64 from ``relevance`` ``(Q, R)`` (True = relevant, rank order).

    ``n_relevant`` ``(Q,)`` is the number of relevant items in the whole gallery (defaults to the
    number in the row, i.e. a full ranking). A query with no relevant item gets NaN.
    """
    relevance = np.asarray(relevance, dtype=bool)
    if relevance.ndim != 2:
        raise ValueError(f"relevance must be (Q, R), got shape {relevance.shape}")
    hits = np.cumsum(relevance, axis=1, dtype=np.float64)
    ranks = np.arange(1, relevance.shape[1] + 1, dtype=np.float64)
    precision_sum = np.where(relevance, hits / ranks, 0.0).sum(axis=1)
    total = relevance.sum(axis=1) if n_relevant is None else np.asarray(n_relevant, np.float64)
    if np.any(relevance.sum(axis=1) > total):
        raise ValueError("n_relevant is smaller than the relevant items found in the ranking")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, precision_sum / np.maximum(total, 1), np.nan)


def average_precision(relevance: np.ndarray, n_relevant: int | None = None) -> float:
    """AP of one ranking: ``relevance`` ``(R,)`` booleans in rank order; NaN with no relevant."""
    row = np.asarray(relevance, dtype=bool)[None, :]
    total = None if n_relevant is None else np.array([n_relevant])
    return float(average_precisions(row, total)[0])


def mean_average_precision(relevance: np.ndarray, n_relevant: np.ndarray | None = None) -> float:
    """mAP: the mean of :func:`average_precisions` over queries that have a relevant item."""
    aps = average_precisions(relevance, n_relevant)
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")


def precision_at_k(relevance: np.ndarray, k: int) -> np.ndarray:
    """Per-query precision at ``k`` ``(Q,)``: relevant items among the first ``k``, divided by k.

    With fewer than ``k`` ranked items the missing ones count as not relevant.
    """
    relevance = np.asarray(relevance, dtype=bool)
    return relevance[:, :k].sum(axis=1) / float(k)


def mean_precision_at_k(relevance: np.ndarray, k: int,
                        n_relevant: np.ndarray | None = None) -> float:
    """mP@k over queries with at least one relevant item (``n_relevant`` > 0 when given)."""
    precisions = precision_at_k(relevance, k)
    total = np.asarray(relevance, bool).sum(axis=1) if n_relevant is None else n_relevant
    keep = np.asarray(total) > 0
    return float(precisions[keep].mean()) if keep.any() else float("nan")


# --------------------------------------------------------------------------------------------
# Same-class and own-image relevance
# --------------------------------------------------------------------------------------------

def same_class_relevance(
    ranking: np.ndarray, own: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance ``(Q, R)`` and ``n_relevant`` ``(Q,)`` for same-class retrieval.

    As in :func:`~cliprobe.metrics.retrieval.first_same_class_rank`, the query's own clean image
    ``own[q]`` is removed from its ranking first (the ranks behind it close up; the freed last
    slot is padded as not relevant) and from the relevant count, so a manipulated query cannot
    score by finding its own clean copy. A gallery item is relevant when its label equals the
    query's label.
    """
    ranking = np.asarray(ranking)
    own = np.asarray(own)
    gallery_labels = np.asarray(gallery_labels)
    query_labels = np.asarray(query_labels)
    keep = ranking != own[:, None]
    relevant = keep & (gallery_labels[ranking] == query_labels[:, None])
    # Stable sort on "removed" moves kept entries to the front in their original order.
    order = np.argsort(~keep, axis=1, kind="stable")
    relevance = np.take_along_axis(relevant, order, axis=1)
    classes, counts = np.unique(gallery_labels, return_counts=True)
    per_class = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    n_relevant = np.array([per_class.get(label, 0) for label in query_labels.tolist()],
                          dtype=np.int64)
    n_relevant -= (gallery_labels[own] == query_labels).astype(np.int64)
    return relevance, n_relevant


def same_class_average_precision(
    ranking: np.ndarray, own: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray
) -> np.ndarray:
    """Per-query same-class AP ``(Q,)`` (own clean image excluded); NaN with no other same-class
    image in the gallery. The mean of the finite values is the same-class mAP."""
    relevance, n_relevant = same_class_relevance(ranking, own, gallery_labels, query_labels)
    return average_precisions(relevance, n_relevant)


def same_class_precision_at_k(
    ranking: np.ndarray, own: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray,
    k: int,
) -> np.ndarray:
    """Per-query same-class precision at ``k`` ``(Q,)`` (own clean image excluded); NaN for
    queries with no other same-class image. Their finite mean is the same-class mP@k."""
    relevance, n_relevant = same_class_relevance(ranking, own, gallery_labels, query_labels)
    return np.where(n_relevant > 0, precision_at_k(relevance, k), np.nan)


def own_image_average_precision(ranking: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per-query AP ``(Q,)`` when the only relevant item is the query's own clean image:
    ``1 / rank`` (1-based), 0 when it is not in the (truncated) ranking."""
    hits = np.asarray(ranking) == np.asarray(own)[:, None]
    return np.where(hits.any(axis=1), 1.0 / (hits.argmax(axis=1) + 1.0), 0.0)


# --------------------------------------------------------------------------------------------
# Revisited Oxford / Paris (Radenović et al. 2018)
# --------------------------------------------------------------------------------------------

def protocol_sets(entry: Mapping[str, Sequence[int] | np.ndarray],
                  protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """``(positives, junk)`` gallery indices of one query under ``protocol``.

    ``entry`` holds the query's ``easy``, ``hard`` and ``junk`` gallery indices (as in the
    ``gnd`` list of ``gnd_roxford5k.pkl`` / ``gnd_rparis6k.pkl``; other keys such as ``bbx`` are
    ignored). Easy: easy positives, hard and junk ignored. Medium: easy and hard positives, junk
    ignored. Hard: hard positives, easy and junk ignored. "Ignored" items are removed from the
    ranking before scoring.
    """
    easy = np.asarray(entry.get("easy", []), dtype=np.int64).ravel()
    hard = np.asarray(entry.get("hard", []), dtype=np.int64).ravel()
    junk = np.asarray(entry.get("junk", []), dtype=np.int64).ravel()
    if protocol == "easy":
        return easy, np.concatenate([junk, hard])
    if protocol == "medium":
        return np.concatenate([easy, hard]), junk
    if protocol == "hard":
        return hard, np.concatenate([junk, easy])
    raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")


def positive_positions(ranking_row: np.ndarray, positives: np.ndarray,
                       junk: np.ndarray) -> np.ndarray:
    """0-based positions ``(P,)`` of the positives in ``ranking_row`` once junk is removed.

    Each positive's position is decreased by the number of junk items ranked before it.
    """
    row = np.asarray(ranking_row)
    positions = np.flatnonzero(np.isin(row, positives))
    junk_positions = np.flatnonzero(np.isin(row, junk))
    return positions - np.searchsorted(junk_positions, positions, side="left")


def revisited_average_precision(positions: np.ndarray, n_positives: int) -> float:
    """The revisitop AP from the sorted, junk-free 0-based ``positions`` of the positives found.

    Trapezoidal area under the precision-recall curve: positive ``j`` (0-based) at position
    ``p`` adds ``(precision_before + precision_at) / 2 / n_positives`` with
    ``precision_before = j / p`` (1 when ``p == 0``) and ``precision_at = (j + 1) / (p + 1)``.
    Positives absent from a truncated ranking add nothing. NaN when ``n_positives == 0``.
    """
    if n_positives == 0:
        return float("nan")
    positions = np.asarray(positions, dtype=np.float64)
    j = np.arange(len(positions), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        before = np.where(positions == 0, 1.0, j / np.where(positions == 0, 1.0, positions))
    at = (j + 1.0) / (positions + 1.0)
    return float(((before + at) / 2.0).sum() / n_positives)


@dataclass
class RevisitedResult:
    """Revisited-protocol scores: ``map`` and per-query ``aps`` ``(Q,)`` (NaN for queries with
    no positive, excluded from every mean), ``mp_at_k`` (k -> mP@k) and per-query
    ``precisions`` ``(Q, len(kappas))``."""

    protocol: str
    map: float
    aps: np.ndarray
    mp_at_k: dict[int, float] = field(default_factory=dict)
    precisions: np.ndarray | None = None
    n_evaluated: int = 0


def revisited_map(
    ranks: np.ndarray,
    gnd: Sequence[Mapping[str, Sequence[int] | np.ndarray]],
    protocol: str,
    kappas: Sequence[int] = (1, 5, 10),
) -> RevisitedResult:
    """mAP and mP@k under the revisited Oxford / Paris ``protocol`` (easy / medium / hard).

    ``ranks`` is ``(Q, R)``: row ``q`` ranks gallery indices best first (**query-major**; the
    reference code takes the transpose, ``(R, Q)``). ``gnd[q]`` holds query ``q``'s ``easy``,
    ``hard`` and ``junk`` gallery indices. Matches ``revisitop``'s ``compute_map`` on the
    protocol's ``ok`` / ``junk`` sets (see :func:`protocol_sets`), including its mP@k: with
    1-based junk-free positions ``pos`` of the positives, ``k' = min(max(pos), k)`` and
    ``P@k = |{pos <= k'}| / k'`` (0 here when no positive was retrieved at all).
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or len(ranks) != len(gnd):
        raise ValueError(f"ranks must be (Q, R) with Q = len(gnd) = {len(gnd)}, got {ranks.shape}")
    n_queries = len(gnd)
    aps = np.full(n_queries, np.nan)
    precisions = np.full((n_queries, len(kappas)), np.nan)
    for q in range(n_queries):
        positives, junk = protocol_sets(gnd[q], protocol)
        if len(positives) == 0:
            continue
        positions = positive_positions(ranks[q], positives, junk)
        aps[q] = revisited_average_precision(positions, len(positives))
        one_based = positions + 1
        for column, kappa in enumerate(kappas):
            if len(one_based) == 0:
                precisions[q, column] = 0.0
                continue
            cutoff = min(int(one_based.max()), int(kappa))
            precisions[q, column] = (one_based <= cutoff).sum() / cutoff
    evaluated = np.isfinite(aps)
    n_evaluated = int(evaluated.sum())
    mean_ap = float(aps[evaluated].mean()) if n_evaluated else float("nan")
    mp = {int(kappa): (float(precisions[evaluated, c].mean()) if n_evaluated else float("nan"))
          for c, kappa in enumerate(kappas)}
    return RevisitedResult(protocol=protocol, map=mean_ap, aps=aps, mp_at_k=mp,
                           precisions=precisions, n_evaluated=n_evaluated)
