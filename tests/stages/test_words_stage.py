"""The words stage on hand-made cells: pairs, text cosine, WordNet offline and from a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliprobe import paths
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.io.classifier import write_classifier
from cliprobe.stages import words

REPO = Path(__file__).resolve().parents[2]
WORDNET = REPO / "tests" / "fixtures" / "wordnet-mini.xml"
CLASSES = ["apple", "mug", "ipod", "cat"]


def _project(root: Path, *overrides: str) -> None:
    params = compose_params(REPO / "conf", ["model=smoke", "manipulation=[postit]",
                                            "stats.bootstrap_resamples=50", *overrides])
    (root / "params.yaml").write_text(to_yaml(params))
    manifest = pd.DataFrame({"image_id": ["a1", "a2", "m1"], "path": ["a1", "a2", "m1"],
                             "label": ["apple", "apple", "mug"], "class_index": [0, 0, 1],
                             "split": "all"})
    paths.manifest_path("sample").parent.mkdir(parents=True)
    manifest.to_parquet(paths.manifest_path("sample"))
    # unit class vectors with known cosines: apple.ipod = 0.6, mug.ipod = 0.8, x.cat = 0
    weights = np.array([[1.0, 0.0, 0.6, 0.0], [0.0, 1.0, 0.8, 0.0], [0.0, 0.0, 0.0, 1.0]])
    paths.classifier_path("smoke", "sample").parent.mkdir(parents=True)
    write_classifier(paths.classifier_path("smoke", "sample"), CLASSES, weights.T,
                     {"prompts": "photo_of"})
    base = {"image_id": ["a1", "a2", "m1"], "label": ["apple", "apple", "mug"],
            "p_true": [0.5, 0.6, 0.7], "zeroshot_correct": [1.0, 1.0, 1.0],
            "zeroshot_predicted": ["apple", "apple", "mug"]}
    for cell, written, p_word in (("original", ["", "", ""], [np.nan] * 3),
                                  ("postit", ["ipod", "cat", "ipod"], [0.4, 0.1, 0.2])):
        folder = paths.cell_dir("smoke", "sample", cell)
        folder.mkdir(parents=True)
        pd.DataFrame({**base, "written_word": written, "p_word": p_word,
                      "attack_success": [0.0 if w else np.nan for w in written]}).to_parquet(
            folder / "per_image.parquet")


def test_offline_wordnet_leaves_its_columns_empty_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    _project(tmp_path, f"proximity.wordnet.cache_dir={tmp_path / 'cache'}")
    words.main([])
    pairs = pd.read_csv(words.WORD_PAIRS)
    assert set(pairs["manipulation"]) == {"postit"}  # the original cell has no words
    by_pair = pairs.set_index(["object", "word"])
    assert by_pair.loc[("apple", "ipod"), "text_cosine"] == pytest.approx(0.6)
    assert by_pair.loc[("mug", "ipod"), "text_cosine"] == pytest.approx(0.8)
    assert pairs["wordnet_wup"].isna().all()
    proximity = pd.read_csv(words.PROXIMITY)
    wordnet_rows = proximity[proximity["measure"] == "wordnet_wup"]
    assert wordnet_rows["source"].str.startswith(
        "unavailable: WordNet lexicon oewn:2024 is not in").all()
    assert "proximity.wordnet.local_file" in caplog.text
    cosine = proximity[(proximity["measure"] == "text_cosine")
                       & (proximity["outcome"] == "p_word")].iloc[0]
    assert cosine["n_pairs"] == 3 and cosine["rho"] == pytest.approx(0.5)
    assert pd.read_csv(words.SALIENCY).empty


def test_a_local_lexicon_fills_the_wordnet_columns(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "proximity.wordnet.lexicon=cliprobe-test:1",
             f"proximity.wordnet.local_file={WORDNET}")
    words.main([])
    by_pair = pd.read_csv(words.WORD_PAIRS).set_index(["object", "word"])
    assert by_pair.loc[("apple", "ipod"), "wordnet_wup"] == pytest.approx(0.4)
    assert by_pair.loc[("apple", "cat"), "wordnet_path"] == pytest.approx(1 / 8)
    assert np.isnan(by_pair.loc[("mug", "ipod"), "wordnet_wup"])  # "mug" is not in it
    proximity = pd.read_csv(words.PROXIMITY)
    assert proximity.loc[proximity["measure"] == "wordnet_wup", "source"].str.contains(
        "cliprobe-test:1").all()
