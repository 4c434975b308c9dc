"""A cell's retrieval scores through every index backend, PCA and k-means."""

from __future__ import annotations

import numpy as np
import pytest

from cliprobe.config.schema import RetrievalConfig
from cliprobe.errors import ConfigError
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.retrieval import align, retrieval_scores


def _table(vectors: np.ndarray, labels: list[str]) -> EmbeddingTable:
    n = len(labels)
    return EmbeddingTable(np.array([f"i{k}" for k in range(n)], dtype=object),
                          np.array(labels, dtype=object), np.zeros(n, dtype=np.int64),
                          vectors.astype(np.float32), {}, np.array([""] * n, dtype=object))


@pytest.fixture(scope="module")
def cell() -> tuple[EmbeddingTable, EmbeddingTable]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    labels = [f"c{k % 4}" for k in range(80)]
    clean = np.stack([centres[k % 4] + 0.3 * rng.normal(size=16) for k in range(80)])
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    noisy = clean + 0.05 * rng.normal(size=clean.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return _table(clean, labels), _table(noisy, labels)


@pytest.mark.parametrize("kind", ["exact", "faiss_flat", "faiss_ivf", "faiss_hnsw"])
def test_every_index_backend_scores_the_cell(cell, kind: str) -> None:  # type: ignore[no-untyped-def]
    gallery, queries = cell
    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"index": {"kind": kind, "nlist": 4, "nprobe": 4}, "neighbours": 5,
         "recall_k": [1, 5]})
    metrics, per_image, neighbour_table, facts = retrieval_scores(
        gallery, queries, rows, own, settings, Estimator(0, "c", 100, 0.95))
    assert facts["index"] == kind
    assert metrics["recall_own_at_1"]["value"] >= 0.9  # small noise: own image first
    assert metrics["map_class"]["value"] > 0.5 and len(per_image) == 80
    assert set(neighbour_table["rank"]) == set(range(6))  # neighbours + 1 (own image)
    if kind != "exact":
        assert 0.0 <= facts["approximate_recall"]["at_5"] <= 1.0
    if kind in ("exact", "faiss_flat"):  # exhaustive: identical rankings
        assert facts.get("approximate_recall", {}).get("at_5", 1.0) == pytest.approx(1.0)


def test_pca_and_kmeans(cell) -> None:  # type: ignore[no-untyped-def]
    gallery, queries = cell
    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"pca": {"enabled": True, "n_components": 8}, "kmeans": {"enabled": True, "k": 4},
         "neighbours": 5, "recall_k": [1, 5]})
    metrics, _, _, facts = retrieval_scores(gallery, queries, rows, own, settings,
                                            Estimator(0, "c", 100, 0.95))
    assert facts["search_dim"] == 8 and facts["clustering"]["k"] == 4
    assert facts["clustering"]["nmi"] > 0.8  # four well separated classes
    assert "kmeans_recall_own_at_5" in metrics


# --- seed 001's score, assembled end to end on a case computed by hand ----------------------

#: Gallery (clean embeddings), in index order: unit vectors whose products with the queries
#: below are exact in float32, so the ties are exact too.
HAND_GALLERY = {"a0": (1.0, 0.0), "a1": (0.8, 0.6), "b0": (0.6, 0.8), "b1": (0.6, -0.8),
                "b2": (-1.0, 0.0)}
#: The manipulated query of each image (same order). Every query is at cosine 0.8 of its clean
#: image, so the cosine drift is 0.8 everywhere.
HAND_QUERIES = {"a0": (0.8, -0.6), "a1": (1.0, 0.0), "b0": (0.0, 1.0), "b1": (0.0, -1.0),
                "b2": (-0.8, 0.6)}


def test_seed001_score_assembly_on_a_hand_computed_case() -> None:
    """N = 3 neighbours of each manipulated query (its own clean image included: the
    ``seed001_own_image: include`` variant; leave-one-out is pinned below), threshold t = 0.8
    on the L2 distance to the *clean* query; mean per class, then over classes; classes
    resampled for the interval.

    By hand (similarities to the query; ties to the smaller gallery index):

    ======  ==================================  ===============================  ========
    query   top 3                               L2 to the clean image (< 0.8?)   accuracy
    ======  ==================================  ===============================  ========
    a0      b1 .96, a0 .8, a1 .28               .894 no, 0 yes, .632 yes         2/3
    a1      a0 1, a1 .8, b0 .6 (= b1 .6: tie)   .632, 0, .283 (b1 would be 1.41)  1
    b0      b0 .8, a1 .6, a0 0 (= b2 0: tie)    0, .283, .894                    2/3
    b1      b1 .8, a0 0, b2 0 (tied, both in)   0, .894, 1.79                    1/3
    b2      b2 .8, b0 0, a1 -.28                0, 1.79, 1.90                    1/3
    ======  ==================================  ===============================  ========

    Class a: (2/3 + 1) / 2 = 5/6; class b: (2/3 + 1/3 + 1/3) / 3 = 4/9; score (5/6 + 4/9) / 2
    = 23/36 (the image mean would be 3/5). Own image at rank 1, 1, 0, 0, 0: recall_own@1 3/5.
    First same-class item once the own image is removed: ranks 1, 0, 2, 1, 0: recall_class@1
    2/5, @3 1.
    """
    names = list(HAND_GALLERY)
    labels = [name[0] for name in names]
    gallery = _table(np.array(list(HAND_GALLERY.values())), labels)
    queries = _table(np.array([HAND_QUERIES[n] for n in names]), labels)
    settings = RetrievalConfig.model_validate({"neighbours": 3, "threshold": 0.8,
                                               "recall_k": [1, 3],
                                               "seed001_own_image": "include"})
    rows, own = align(gallery, queries)
    metrics, per_image, neighbour_table, _ = retrieval_scores(
        gallery, queries, rows, own, settings, Estimator(0, "hand", 1000, 0.95))

    np.testing.assert_allclose(per_image["seed001_accuracy"], [2 / 3, 1, 2 / 3, 1 / 3, 1 / 3])
    first_three = (neighbour_table[neighbour_table["rank"] < 3]
                   .groupby("image_id", sort=False)["neighbour_id"].agg(list))
    index = {f"i{k}": name for k, name in enumerate(names)}
    assert [[index[i] for i in row] for row in first_three] == [
        ["b1", "a0", "a1"], ["a0", "a1", "b0"], ["b0", "a1", "a0"], ["b1", "a0", "b2"],
        ["b2", "b0", "a1"]]
    score = metrics["seed001_accuracy"]
    assert score["value"] == pytest.approx(23 / 36)
    assert score["resampled"] == "classes" and score["n"] == 2  # two class means
    # two classes: the resampled means are 4/9, 23/36 or 5/6, so the 95% interval spans both
    assert (score["ci_low"], score["ci_high"]) == pytest.approx((4 / 9, 5 / 6))
    np.testing.assert_array_equal(per_image["own_rank"], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(per_image["class_rank"], [1, 0, 2, 1, 0])
    assert metrics["recall_own_at_1"]["value"] == pytest.approx(3 / 5)
    assert metrics["recall_own_at_3"]["value"] == pytest.approx(1.0)
    assert metrics["recall_class_at_1"]["value"] == pytest.approx(2 / 5)
    assert metrics["recall_class_at_3"]["value"] == pytest.approx(1.0)
    assert metrics["cosine_drift"]["value"] == pytest.approx(0.8)


def _unit(degrees: list[float]) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


@pytest.mark.parametrize(("own_image", "per_query", "per_class", "score"), [
    # leave-one-out (the default): the own clean image never counts among the N neighbours
    ("exclude", [0.5, 0.0, 0.5, 0.5], {"A": 0.25, "B": 0.5}, 0.375),
    # inclusive: the own clean image (distance 0) is among them whenever retrieved
    ("include", [1.0, 0.5, 1.0, 1.0], {"A": 0.75, "B": 1.0}, 0.875),
])
def test_seed001_full_score_by_hand(own_image: str, per_query: list[float],
                                    per_class: dict[str, float], score: float) -> None:
    """Seed 001's score end to end (neighbours from the index -> L2 threshold to the clean
    query -> class means -> dataset mean) on unit vectors in the plane.

    Gallery a0 0°, a1 30° (class A), b0 90°, b1 100° (class B); manipulated queries at 10°,
    55°, 93°, 180°; N = 2, t = 0.8 (an angle below 2·asin(0.4) = 47.2° from the clean query).
    Rankings: 10° -> a0 a1 b0 b1; 55° -> a1 b0 b1 a0; 93° -> b0 b1 a1 a0; 180° -> b1 b0 a1 a0.
    Leave-one-out drops the own image: a0' sees a1 (30° ✓) b0 (90° ✗) = 0.5; a1' sees b0 (60°)
    b1 (70°) = 0; b0' sees b1 (10° ✓) a1 (60°) = 0.5; b1' sees b0 (10° ✓) a1 (70°) = 0.5.
    Inclusive: a0' a0 a1 = 1; a1' a1 b0 = 0.5; b0' b0 b1 = 1; b1' b1 b0 = 1.
    """
    labels = ["A", "A", "B", "B"]
    gallery = _table(_unit([0, 30, 90, 100]), labels)
    queries = _table(_unit([10, 55, 93, 180]), labels)
    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"neighbours": 2, "threshold": 0.8, "recall_k": [1], "seed001_own_image": own_image})
    metrics, per_image, _, facts = retrieval_scores(gallery, queries, rows, own, settings,
                                                    Estimator(0, "c", 0, 0.95))
    np.testing.assert_allclose(per_image["seed001_accuracy"], per_query)
    from cliprobe.metrics.retrieval import class_means

    assert class_means(per_image["seed001_accuracy"].to_numpy(),
                       per_image["label"].to_numpy()).to_dict() == pytest.approx(per_class)
    assert metrics["seed001_accuracy"]["value"] == pytest.approx(score)
    assert facts["seed001"]["own_image"].startswith(
        "excluded" if own_image == "exclude" else "included")


def test_leave_one_out_is_the_default() -> None:
    assert RetrievalConfig().seed001_own_image == "exclude"


def test_leave_one_out_on_a_gallery_without_n_other_images_says_so() -> None:
    """N = 4 neighbours besides the own image need 5 gallery images: 4 give one sentence
    naming both ways out (the inclusive variant still works on them)."""
    labels = ["A", "A", "B", "B"]
    gallery = _table(_unit([0, 30, 90, 100]), labels)
    rows, own = align(gallery, gallery)
    settings = {"neighbours": 4, "threshold": 0.8, "recall_k": [1]}
    with pytest.raises(ConfigError, match=r"lower retrieval\.neighbours or set "
                                          r"retrieval\.seed001_own_image=include"):
        retrieval_scores(gallery, gallery, rows, own, RetrievalConfig.model_validate(settings),
                         Estimator(0, "c", 0, 0.95))
    included = RetrievalConfig.model_validate({**settings, "seed001_own_image": "include"})
    metrics, *_ = retrieval_scores(gallery, gallery, rows, own, included,
                                   Estimator(0, "c", 0, 0.95))
    assert metrics["seed001_accuracy"]["value"] == pytest.approx(0.5)  # own + 1 of 3 within t
