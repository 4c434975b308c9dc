"""The classifier stage: every class of the dataset stays when classes are subsampled (unless
asked otherwise), each dataset's own prompts are used, and the model's logit scale is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.datasets.manifest import read_manifest
from cliprobe.io.classifier import read_classifier

CONF = Path(__file__).resolve().parents[1] / "conf"


def _run(root: Path, overrides: list[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from cliprobe.stages import classifier, fetch

    root.mkdir()
    raw = compose_params(CONF, ["model=smoke", "dataset=[sample]", "manipulation=[]",
                                "dataset.sample.subsample.classes=3", *overrides])
    (root / "params.yaml").write_text(to_yaml(raw))
    monkeypatch.chdir(root)
    fetch.main(["--dataset", "sample"])
    classifier.main(["--model", "smoke", "--dataset", "sample"])
    manifest, info = read_manifest(root / "data" / "manifests" / "sample.parquet")
    return manifest, info, read_classifier(root / "data" / "classifiers" / "smoke" /
                                           "sample.parquet")


def test_subsampled_classes_stay_in_the_classifier_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, info, classifier = _run(tmp_path / "all", [], monkeypatch)
    present = sorted(set(manifest["label"]))
    assert len(present) == 3
    assert classifier.class_names == info["all_classes"]  # every class, sorted
    assert len(classifier.class_names) > 3 and set(present) <= set(classifier.class_names)
    meta = classifier.metadata
    assert (meta["classes"], meta["n_dataset_classes"], meta["n_present_classes"]) == (
        "all", len(info["all_classes"]), 3)
    # the sample has no published prompts: the CLIP paper's basic one, labels as names
    assert meta["prompts"] == "dataset" and meta["dataset_prompts"] == "photo_of"
    assert meta["n_templates"] == 1 and meta["class_names_from"] == "the dataset's labels"
    # the smoke model's own learned scale (1/0.07 at initialisation), not a fixed 100
    assert meta["logit_scale"] == pytest.approx(1 / 0.07, rel=1e-5)
    assert meta["logit_bias"] is None


def test_present_keeps_only_the_subsampled_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, _, classifier = _run(tmp_path / "present",
                                   ["zeroshot.classes=present", "prompts=this_is"], monkeypatch)
    assert classifier.class_names == sorted(set(manifest["label"]))
    assert classifier.metadata["classes"] == "present"
    assert classifier.metadata["prompts"] == "this_is"
