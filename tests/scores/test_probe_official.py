"""The literature linear probe through the real stages (fetch -> embed -> score) with the smoke
model: the official train split is fetched and embedded as its own output, C is chosen on a
validation split, the probe is tested on the evaluated split and on a manipulated cell. (A
dataset without a train split saying so is checked by the pipeline test,
tests/test_pipeline_caching.py, on `sample`.)"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.datasets.manifest import read_manifest
from cliprobe.io.embeddings import read_embeddings
from cliprobe.metrics.linear_probe import fit_literature_probe, validation_split

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
COLOURS = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230]])


def _batch(n: int, seed: int) -> dict[str, object]:
    """n CIFAR-style images of 3 classes, each class a colour plus noise (learnable)."""
    rng = np.random.default_rng(seed)
    labels = [i % 3 for i in range(n)]
    images = np.clip(COLOURS[labels][:, None, None, :] + rng.normal(0, 40, (n, 32, 32, 3)),
                     0, 255).astype(np.uint8)
    return {"data": images.transpose(0, 3, 1, 2).reshape(n, -1), "labels": labels}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torchvision.datasets.cifar as cifar

    root = tmp_path_factory.mktemp("probe")
    batches = root / "cache" / "torchvision" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for k in range(1, 6):
        (batches / f"data_batch_{k}").write_bytes(pickle.dumps(_batch(12, k)))
    (batches / "test_batch").write_bytes(pickle.dumps(_batch(15, 99)))
    (batches / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
    conf = Path(__file__).resolve().parents[2] / "conf"
    raw = compose_params(conf, [
        "model=smoke", "dataset=[cifar10]", "manipulation=[grey]",
        f"dataset.cifar10.source.cache_dir={root / 'cache'}", "embed.num_workers=0",
        "stats.bootstrap_resamples=20", "retrieval.recall_k=[1]", "retrieval.neighbours=2"])
    (root / "params.yaml").write_text(to_yaml(raw))
    from cliprobe.stages import captions, classifier, embed, fetch, score

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("CLIPROBE_OFFLINE", "1")
        patch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)  # fake batches
        cell = ["--model", "smoke", "--dataset", "cifar10"]
        fetch.main(["--dataset", "cifar10"])
        for manipulation in ("original", "grey"):
            embed.main([*cell, "--manipulation", manipulation])
        classifier.main(cell)
        captions.main(cell)
        for manipulation in ("original", "grey"):
            score.main([*cell, "--manipulation", manipulation])
    return root


def _cell(project: Path, dataset: str, manipulation: str) -> dict:
    return json.loads((project / "data" / "cells" / "smoke" / dataset / manipulation /
                       "metrics.json").read_text())


def test_the_train_split_is_fetched_and_embedded_as_its_own_output(project: Path) -> None:
    manifest, info = read_manifest(project / "data" / "manifests" /
                                   "cifar10.train_split.parquet")
    assert len(manifest) == 60 and set(manifest["split"]) == {"train"}
    assert manifest["image_id"].iloc[0].startswith("train/")
    assert info["probe_train"]["splits"] == {"train": {"split": "train", "images": 60}}
    train = read_embeddings(project / "data" / "embeddings" / "smoke" / "cifar10" /
                            "train_split.parquet")
    assert len(train) == 60
    test, _ = read_manifest(project / "data" / "manifests" / "cifar10.parquet")
    assert len(test) == 15 and not set(test["image_id"]) & set(manifest["image_id"])


def test_the_probe_is_trained_on_train_tuned_on_validation_tested_on_test(
    project: Path
) -> None:
    cell = _cell(project, "cifar10", "original")
    record = cell["probe_official"]
    assert record["protocol"].startswith("CLIP paper (appendix A.3)")
    assert record["validation"] == "a seeded stratified 0.2 of the train split"
    assert (record["n_train"], record["n_validation"]) == (48, 12)
    # the same protocol by hand on the stored embeddings gives the cell's number
    train = read_embeddings(project / "data" / "embeddings" / "smoke" / "cifar10" /
                            "train_split.parquet")
    test = read_embeddings(project / "data" / "embeddings" / "smoke" / "cifar10" /
                           "original.parquet")
    fit_rows, val_rows = validation_split(train.labels.astype(str), 0.2, 0)
    probe = fit_literature_probe(train.vectors[fit_rows], train.labels[fit_rows].astype(str),
                                 train.vectors[val_rows], train.labels[val_rows].astype(str))
    expected = float(np.mean(probe.model.predict(test.vectors.astype(np.float64))
                             == test.labels.astype(str)))
    assert record["C"] == pytest.approx(probe.C)
    assert cell["metrics"]["probe_official_accuracy"]["value"] == pytest.approx(expected)
    assert cell["metrics"]["probe_official_accuracy"]["n"] == 15
    grey = _cell(project, "cifar10", "grey")
    assert grey["metrics"]["probe_official_accuracy"]["n"] == 15  # every test image
    assert "official train split" in grey["probe_official"]["evaluated_on"]
    assert "probe_accuracy" in cell["metrics"]  # seed 002's within-split probe stays

