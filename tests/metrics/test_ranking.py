"""AP / mAP / mP@k, same-class and own-image AP, and the revisited Oxford/Paris protocol."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cliprobe.metrics.ranking import (
    average_precision,
    average_precisions,
    mean_average_precision,
    mean_precision_at_k,
    own_image_average_precision,
    precision_at_k,
    protocol_sets,
    revisited_map,
    same_class_average_precision,
    same_class_precision_at_k,
)

# --- non-interpolated AP -------------------------------------------------------------------


def test_average_precision_by_hand() -> None:
    relevance = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    # hits at ranks 1, 3, 6: precisions 1, 2/3, 3/6
    assert average_precision(relevance) == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # a fourth relevant item never retrieved adds 0 but counts in the denominator
    assert average_precision(relevance, n_relevant=4) == pytest.approx((1 + 2 / 3 + 1 / 2) / 4)
    assert np.isnan(average_precision(np.zeros(4, dtype=bool)))


def test_average_precision_matches_sklearn_on_full_rankings() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    relevance = rng.random((20, 30)) < 0.2
    relevance[:, 0] |= ~relevance.any(axis=1)
    scores = np.arange(30, 0, -1)  # rank order = decreasing score, no ties
    expected = [average_precision_score(row, scores) for row in relevance]
    np.testing.assert_allclose(average_precisions(relevance), expected, rtol=1e-12)
    assert mean_average_precision(relevance) == pytest.approx(np.mean(expected))


def test_precision_at_k() -> None:
    relevance = np.array([[1, 0, 1, 1], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_allclose(precision_at_k(relevance, 2), [0.5, 0.0])
    np.testing.assert_allclose(precision_at_k(relevance, 4), [0.75, 0.0])
    assert mean_precision_at_k(relevance, 2) == pytest.approx(0.5)  # row 2 has no relevant item


# --- same-class and own-image ----------------------------------------------------------------


def test_same_class_ap_excludes_the_own_clean_image() -> None:
    gallery_labels = np.array([0, 0, 1, 1, 0])
    own = np.array([1, 2])
    query_labels = np.array([0, 2])  # label 2: no other image of that class
    ranking = np.array([[1, 2, 0, 3, 4], [2, 0, 1, 3, 4]])
    aps = same_class_average_precision(ranking, own, gallery_labels, query_labels)
    # query 0 without item 1: [2, 0, 3, 4] -> relevant at 2 and 4 of 2 relevant: (1/2 + 2/4) / 2
    assert aps[0] == pytest.approx(0.5)
    assert np.isnan(aps[1])
    p_at_2 = same_class_precision_at_k(ranking, own, gallery_labels, query_labels, 2)
    assert p_at_2[0] == pytest.approx(0.5) and np.isnan(p_at_2[1])


def test_same_class_ap_on_a_truncated_ranking() -> None:
    gallery_labels = np.array([0, 0, 1, 1, 0])
    ranking = np.array([[1, 2, 0]])  # own (1) removed -> [2, 0]; item 4 never retrieved
    aps = same_class_average_precision(ranking, np.array([1]), gallery_labels, np.array([0]))
    assert aps[0] == pytest.approx((1 / 2) / 2)


def test_own_image_ap_is_one_over_rank() -> None:
    ranking = np.array([[5, 3, 1], [2, 9, 8], [4, 0, 0]])
    np.testing.assert_allclose(own_image_average_precision(ranking, np.array([3, 7, 4])),
                               [0.5, 0.0, 1.0])


# --- revisited Oxford / Paris ----------------------------------------------------------------

# Query 0 ranks gallery items 0..9 as RANKING; easy {7, 2}, hard {1, 8}, junk {0, 9}.
RANKING = [3, 7, 1, 0, 5, 2, 9, 4, 8, 6]
GND = [
    {"easy": [7, 2], "hard": [1, 8], "junk": [0, 9], "bbx": [0, 0, 10, 10]},
    {"easy": [0], "hard": [], "junk": []},
]
RANKS = np.array([RANKING, list(range(10))])


def _trapezoid_ap(positions: list[int], n: int) -> Fraction:
    """Hand formula: sum over positives j at junk-free position p of (j/p + (j+1)/(p+1)) / 2n."""
    total = Fraction(0)
    for j, p in enumerate(positions):
        before = Fraction(1) if p == 0 else Fraction(j, p)
        total += (before + Fraction(j + 1, p + 1)) / 2
    return total / n


def test_revisited_protocols_by_hand() -> None:
    # Medium: positives 7, 1, 2, 8 at raw positions 1, 2, 5, 8; junk 0, 9 at 3, 6 -> positions
    # 1, 2, 4, 6. AP = (1/4 + 7/12 + 11/20 + 15/28) / 4 = 403/840.
    assert _trapezoid_ap([1, 2, 4, 6], 4) == Fraction(403, 840)
    # Easy: positives 7, 2; junk 0, 9 and hard 1, 8 -> positions 1, 3. AP = 1/3.
    assert _trapezoid_ap([1, 3], 2) == Fraction(1, 3)
    # Hard: positives 1, 8; junk 0, 9 and easy 7, 2 -> positions 1, 4. AP = 23/80.
    assert _trapezoid_ap([1, 4], 2) == Fraction(23, 80)
    # Query 1 finds its only easy positive first: AP = (1 + 1) / 2 = 1; it has no hard positive.
    medium = revisited_map(RANKS, GND, "medium")
    easy = revisited_map(RANKS, GND, "easy")
    hard = revisited_map(RANKS, GND, "hard")
    np.testing.assert_allclose(medium.aps, [403 / 840, 1.0])
    np.testing.assert_allclose(easy.aps, [1 / 3, 1.0])
    assert hard.aps[0] == pytest.approx(23 / 80) and np.isnan(hard.aps[1])
    assert medium.map == pytest.approx((403 / 840 + 1) / 2)
    assert easy.map == pytest.approx(2 / 3)
    assert hard.map == pytest.approx(23 / 80) and hard.n_evaluated == 1


def test_revisited_mp_at_k_by_hand() -> None:
    # Medium, query 0: 1-based positions 2, 3, 5, 7. P@1 = 0/1, P@5 = 3/5, P@10 -> k' = 7: 4/7.
    # Query 1: position 1 -> P@k = 1/1 for every k (k' = min(1, k)).
    result = revisited_map(RANKS, GND, "medium", kappas=(1, 5, 10))
    np.testing.assert_allclose(result.precisions, [[0.0, 3 / 5, 4 / 7], [1.0, 1.0, 1.0]])
    assert result.mp_at_k[5] == pytest.approx((3 / 5 + 1) / 2)


def test_protocol_sets() -> None:
    ok, junk = protocol_sets(GND[0], "easy")
    assert set(ok) == {7, 2} and set(junk) == {0, 9, 1, 8}
    ok, junk = protocol_sets(GND[0], "medium")
    assert set(ok) == {7, 2, 1, 8} and set(junk) == {0, 9}
    ok, junk = protocol_sets(GND[0], "hard")
    assert set(ok) == {1, 8} and set(junk) == {0, 9, 7, 2}
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_sets(GND[0], "extreme")


def _reference_ap(ranking: list[int], ok: set[int], junk: set[int]) -> float:
    """An independent, literal reading of the protocol: drop junk, walk the list."""
    kept = [item for item in ranking if item not in junk]
    found, total = 0, 0.0
    for position, item in enumerate(kept):
        if item in ok:
            before = 1.0 if position == 0 else found / position
            found += 1
            total += (before + found / (position + 1)) / 2
    return total / len(ok)


def test_revisited_ap_matches_a_literal_reference_on_random_rankings() -> None:
    rng = np.random.default_rng(0)
    n, q = 60, 15
    ranks = np.stack([rng.permutation(n) for _ in range(q)])
    gnd = []
    for _ in range(q):
        items = rng.permutation(n)
        gnd.append({"easy": items[:5], "hard": items[5:9], "junk": items[9:14]})
    for protocol in ("easy", "medium", "hard"):
        result = revisited_map(ranks, gnd, protocol)
        for row in range(q):
            ok, junk = protocol_sets(gnd[row], protocol)
            expected = _reference_ap(ranks[row].tolist(), set(ok.tolist()), set(junk.tolist()))
            assert result.aps[row] == pytest.approx(expected)


def test_revisited_map_needs_query_major_ranks() -> None:
    with pytest.raises(ValueError, match="Q = len"):
        revisited_map(RANKS.T, GND, "medium")
