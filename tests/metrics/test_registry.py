"""The metric registry: every metric the code emits has an entry, found by running the code.

The names are never listed here by hand: every score function runs on one fixture with every
option on (k-means, revisited ground truth, captions, written words, word queries, the probe,
the remote kNN service on 127.0.0.1), then the aggregate's corruption summary and the words
stage's tables; whatever metric names come out must resolve in the registry. The end-to-end
pipeline tests check the same for the cells of real DVC runs.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliprobe.config.schema import RetrievalConfig
from cliprobe.io.caption_embeddings import CaptionEmbeddings
from cliprobe.io.classifier import Classifier
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.metrics import corruption as cm
from cliprobe.metrics import registry
from cliprobe.retrieval.remote_knn import KnnClient
from cliprobe.saliency.summary import mass_summary
from cliprobe.scores import probe
from cliprobe.scores.captions import caption_scores
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.remote import RemoteRetrievalConfig, remote_scores
from cliprobe.scores.retrieval import align, retrieval_scores, revisited_scores
from cliprobe.scores.zeroshot import word_search_scores, zeroshot_scores
from cliprobe.stages.words import PROXIMITY_MEASURES
from scores.test_remote_scores import _embed_by_colour, service  # noqa: F401  (fixture)

CLASSES = ["apple", "dog", "ipod", "cat", "egg", "cup"]


def _table(vectors: np.ndarray, labels: list[str], infos: list[dict]) -> EmbeddingTable:
    n = len(labels)
    return EmbeddingTable(
        image_ids=np.asarray([f"img{i}" for i in range(n)], dtype=object),
        labels=np.asarray(labels, dtype=object), class_indices=np.zeros(n, dtype=np.int64),
        vectors=vectors.astype(np.float32), metadata={},
        infos=np.asarray([json.dumps(i) if i else "" for i in infos], dtype=object))


def _names(metrics: dict) -> set[str]:
    return set(metrics)


def emitted_by_the_scores(tmp_path: Path, service_url: str) -> set[str]:
    """Every metric name the cell's score functions return on a fixture, all options on."""
    rng = np.random.default_rng(0)
    n = 36
    labels = [CLASSES[i % len(CLASSES)] for i in range(n)]
    centres = rng.normal(size=(len(CLASSES), 6))
    clean = np.stack([centres[i % len(CLASSES)] + 0.3 * rng.normal(size=6) for i in range(n)])
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    noisy = clean + 0.1 * rng.normal(size=clean.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    infos = [{"word": "ipod", "word_label": "ipod"} if i % 3 == 0 else {} for i in range(n)]
    gallery, queries = _table(clean, labels, [{}] * n), _table(noisy, labels, infos)
    estimate = Estimator(0, "m/d/x", 50, 0.95)
    names: set[str] = set()

    rows, own = align(gallery, queries)
    settings = RetrievalConfig.model_validate(
        {"index": {"kind": "faiss_flat"}, "neighbours": 5, "recall_k": [1, 5, 10],
         "kmeans": {"enabled": True, "k": 3, "n_init": 2}, "pca": {"enabled": True,
                                                                  "n_components": 4}})
    metrics, *_ = retrieval_scores(gallery, queries, rows, own, settings, estimate)
    names |= _names(metrics)

    manifest = pd.DataFrame({
        "image_id": [f"img{i}" for i in range(n)],
        "gnd_easy": [json.dumps(["img1", "img2"]) if i < 2 else None for i in range(n)],
        "gnd_hard": [json.dumps(["img3"]) if i < 2 else None for i in range(n)],
        "gnd_junk": [json.dumps([]) if i < 2 else None for i in range(n)],
        "condition": ["typographic_attack" if i % 3 == 0 else "clean" for i in range(n)],
    })
    metrics, _ = revisited_scores(gallery, queries, manifest, estimate)
    assert metrics, "the fixture's ground truth must give revisited metrics"
    names |= _names(metrics)

    classifier = Classifier(CLASSES, centres.T.astype(np.float32)
                            / np.linalg.norm(centres, axis=1).astype(np.float32), {},
                            (centres / np.linalg.norm(centres, axis=1, keepdims=True))
                            .astype(np.float32))
    metrics, _, _, by_condition = zeroshot_scores(queries, rows, classifier, manifest, estimate)
    names |= _names(metrics)
    assert by_condition, "the fixture's conditions must give per-condition metrics"
    for entry in by_condition.values():
        names |= {k for k in entry if isinstance(entry[k], dict)}
    metrics, _ = word_search_scores(queries, rows, gallery.vectors[own], classifier, estimate)
    assert metrics
    names |= _names(metrics)

    owner = np.repeat(np.arange(n), 2)
    captions = CaptionEmbeddings(
        caption_ids=np.asarray([f"c{i}" for i in range(2 * n)], dtype=object),
        image_ids=np.asarray([f"img{i}" for i in owner], dtype=object),
        vectors=clean[owner].astype(np.float32), metadata={})
    metrics, _, _ = caption_scores(queries, rows, captions, [1, 5, 10], estimate)
    names |= _names(metrics)

    fitted = probe.fit_and_save(gallery, 0, 0.25, tmp_path / probe.PROBE_FILE, estimate)
    names.add("probe_accuracy") if "test" in fitted else pytest.fail(str(fitted))

    config = RemoteRetrievalConfig(enabled=True, url=service_url,
                                   cache_dir=str(tmp_path / "knn"),
                                   image_cache=str(tmp_path / "images"), retries=0)
    two_d = np.array([[1, 0], [0, 1]], dtype=np.float32)
    metrics, _ = remote_scores(two_d, two_d, np.array(["red", "blue"]), config, 0.8,
                               _embed_by_colour, estimate, KnnClient(config))
    names |= _names(metrics)
    return names


def emitted_by_the_summaries() -> set[str]:
    """Names the aggregate and words stages add: the corruption summary's keys and the error
    CE is computed from, the saliency statistics, the proximity measures."""
    from cliprobe.metrics.summary import ERROR_METRIC

    errors = {c: {s: 0.5 for s in cm.SEVERITIES} for c in cm.ALEXNET_ERRORS}
    summary = cm.corruption_summary(errors, 0.3)
    names = {k for k, v in summary.items() if isinstance(v, dict | float)} | {ERROR_METRIC}
    names.add("clean_error")  # metrics.corruption_summary.corruption_report's baseline entry
    mass = pd.DataFrame({"image_id": ["a", "a"], "view": ["attacked"] * 2,
                         "method": ["gradcam"] * 2, "role": ["object", "second"],
                         "class_name": ["egg", "cat"], "second_role": ["word"] * 2,
                         "mass_in_box": [0.1, 0.4], "box_fraction": [0.2, 0.2]})
    stats = mass_summary(mass, Estimator(0, "m/d/x", 10, 0.95))["gradcam"]["attacked"]
    names |= {k for k, v in stats.items() if isinstance(v, dict)}
    return names | set(PROXIMITY_MEASURES)


def test_every_metric_the_code_emits_has_an_entry(
    tmp_path: Path, service: tuple[str, dict[str, int]],  # noqa: F811
) -> None:
    names = emitted_by_the_scores(tmp_path, service[0]) | emitted_by_the_summaries()
    # the fixture reaches every family of scores (a guard against a silently skipped branch)
    for expected in ("seed001_accuracy", "kmeans_recall_own_at_10", "revisited_map_hard",
                     "attack_success_rate", "word_search_gain", "image_to_text_recall_at_5",
                     "probe_accuracy", "seed001_accuracy_remote", "mce",
                     "mass_in_box_word_minus_object", "text_cosine"):
        assert expected in names
    assert registry.unregistered(names) == []


def test_an_unknown_metric_is_reported_and_still_shown() -> None:
    assert registry.unregistered(["recall_own_at_7", "brand_new_metric"]) == ["brand_new_metric"]
    fallback = registry.describe("brand_new_metric")
    assert fallback.label == "brand_new_metric" and "not in the metric registry" in (
        fallback.description)


def test_placeholders_fill_label_and_description() -> None:
    info = registry.lookup("revisited_mp_medium_at_10")
    assert info is not None and info.entry == "revisited_mp_{protocol}_at_{k}"
    assert info.label == "revisited precision@10 (medium)"
    assert "at 10 under the medium protocol" in info.description
    assert registry.lookup("recall_own_at_x") is None
    assert registry.lookup("revisited_map_extreme") is None
    # recall@1, @5, @10 in numeric order, families in registry order
    ordered = sorted(["recall_own_at_10", "recall_own_at_5", "zeroshot_acc1",
                      "recall_own_at_1"], key=registry.family_order)
    assert ordered == ["zeroshot_acc1", "recall_own_at_1", "recall_own_at_5", "recall_own_at_10"]


def test_units_state_values_and_signed_differences() -> None:
    share = registry.lookup("zeroshot_acc1").unit  # type: ignore[union-attr]
    assert share.value(0.754) == "75.4%"
    assert share.signed(-0.123) == "−12.3 pt" and share.signed(0.081, unit=False) == "+8.1"
    assert share.signed(-0.00001) == "0.0 pt" and share.value(math.nan) == "–"
    cosine = registry.lookup("cosine_drift").unit  # type: ignore[union-attr]
    assert cosine.value(0.99981) == "0.9998" and cosine.signed(-0.0011) == "−0.0011"


def test_every_entry_is_complete() -> None:
    seen = set()
    for metric in registry.METRICS:
        assert metric.name not in seen
        seen.add(metric.name)
        for text in (metric.label, metric.description, metric.protocol, metric.reference):
            assert text.strip() and "\n" not in text, metric.name
        assert metric.description.endswith("."), metric.name
        assert metric.better in ("higher", "lower", "none")
    # no two entries claim the same concrete name
    for metric in registry.METRICS:
        example = re.sub(r"\{k\}", "3", metric.name).replace("{protocol}", "easy")
        claims = [m.name for m in registry.METRICS if m.pattern.match(example)]
        assert claims == [metric.name], claims


def test_readme_metric_list_is_the_registry(repo: Path) -> None:
    readme = (repo / "README.md").read_text()
    block = re.search(r"<!-- metrics:start[^>]*-->\n(.*?)<!-- metrics:end -->", readme, re.S)
    assert block is not None, "README.md lost its generated metric list markers"
    assert block[1] == registry.markdown_list(), (
        "README.md's metric list is stale: paste `cliprobe list metrics --markdown` between "
        "the markers")


def test_cliprobe_list_metrics_prints_the_registry(repo: Path) -> None:
    binary = Path(sys.executable).parent / "cliprobe"
    shown = subprocess.run([str(binary), "list", "metrics"], cwd=repo, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for metric in registry.METRICS:
        assert metric.name in shown.stdout
    markdown = subprocess.run([str(binary), "list", "metrics", "--markdown"], cwd=repo,
                              capture_output=True, text=True, timeout=120)
    assert markdown.stdout == registry.markdown_list()
