"""End to end: real typographic photos, saliency and proximity as cached DVC cells.

A throw-away project with the smoke model on part of the Distill photos (``local_dir``),
seed 000's experiment 4 (``postit_lower_half``), saliency on two cells and WordNet from the
test lexicon: every new output is produced by `dvc repro`, a second run does nothing, a
saliency parameter re-runs only the saliency stages (and what reads them), and emptying
``saliency.cells`` computes no map.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliprobe.devtools import make_project, repro

pytestmark = pytest.mark.slow

WORDNET = Path(__file__).resolve().parent / "fixtures" / "wordnet-mini.xml"
SALIENCY = ["saliency@smoke-wild-original", "saliency@smoke-wild-postit_lower_half"]


def _overrides(photos: Path, *extra: str) -> list[str]:
    return ["model=smoke", "embed.num_workers=0", "stats.bootstrap_resamples=100",
            "dataset=[wild]", "manipulation=[postit_lower_half]",
            "saliency.cells=[original,postit_lower_half]", "saliency.max_images=2",
            "zeroshot.extra_classes=[cat]",  # the post-it's word must be a class
            "proximity.wordnet.lexicon=cliprobe-test:1",
            f"proximity.wordnet.local_file={WORDNET}", *extra]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, repo: Path, shared_data: Path):
    root = make_project(tmp_path_factory.mktemp("words") / "project", repo)
    photos = root.parent / "photos"
    photos.mkdir()
    for photo in sorted((shared_data / "typographic_in_the_wild" / "in-the-wild-2").glob(
            "*.jpg")):
        if photo.name.startswith(("apple-", "mug-")):
            shutil.copy(photo, photos / photo.name)
    conf = (root / "conf" / "dataset" / "typographic_in_the_wild.yaml").read_text()
    (root / "conf" / "dataset" / "wild.yaml").write_text(
        conf.replace("typographic_in_the_wild:\n", "wild:\n", 1)
        .replace("local_dir: null", f"local_dir: {photos}"))
    return root, photos


def test_saliency_and_words_are_cached_cells(project) -> None:
    root, photos = project
    first, _, _ = repro(root, _overrides(photos))
    assert set(SALIENCY) | {"words", "plot", "report"} <= first
    figures = {p.name for p in (root / "plots" / "figures").glob("*.png")}
    assert {"gallery_smoke_wild_original.png", "typographic_matrix_smoke_wild_original.png",
            "proximity_smoke_wild_original.png",
            "saliency_smoke_wild_original_gradcam.png",
            "saliency_smoke_wild_original_occlusion.png",
            "saliency_smoke_wild_postit_lower_half_gradcam.png"} <= figures

    # the maps record their method and params; the post-it's box is measured
    cell = root / "data" / "cells" / "smoke" / "wild" / "_saliency" / "postit_lower_half"
    report = json.loads((cell / "saliency.json").read_text())
    methods = report["provenance"]["methods"]
    assert methods["gradcam"]["layer"] == "transformer.resblocks[-1].ln_1"
    assert (methods["occlusion"]["window_px"], methods["occlusion"]["stride_px"]) == (16, 8)
    assert report["n_images"] == 2 and report["with_word_box"] == 2
    with np.load(cell / "maps.npz", allow_pickle=False) as maps:
        assert maps["occlusion"].shape == (2, 2, 2, 56, 56)
    table = pd.read_csv(root / "metrics" / "saliency.csv")
    assert set(table["manipulation"]) == {"postit_lower_half"}  # Distill photos have no box

    # proximity: the test lexicon's hand-checked pair, and Spearman over the attacking pairs
    pairs = pd.read_csv(root / "plots" / "word_pairs.csv")
    apple_ipod = pairs[(pairs["manipulation"] == "original") & (pairs["object"] == "apple")
                       & (pairs["word"] == "ipod")]
    assert apple_ipod["wordnet_wup"].tolist() == pytest.approx([0.4])
    proximity = pd.read_csv(root / "metrics" / "proximity.csv")
    cosine = proximity[(proximity["manipulation"] == "original")
                       & (proximity["measure"] == "text_cosine")
                       & (proximity["outcome"] == "p_word")]
    assert cosine["n_pairs"].tolist() == [17 + 17]  # 19 words each, less blank and own name
    assert "cliprobe-test:1" in proximity["source"].iloc[-1]
    # every metric, saliency statistic and proximity measure the run emitted is registered
    from cliprobe.metrics.registry import unregistered

    cells = pd.read_csv(root / "metrics" / "cells.csv")
    assert unregistered({*cells["metric"], *table["statistic"], *proximity["measure"]}) == []

    # nothing changed: nothing runs but the scan of local inputs, which finds them unchanged
    assert repro(root, _overrides(photos))[0] == {"scan"}
    # a saliency parameter: only the saliency stages and what reads their outputs
    changed = repro(root, _overrides(photos, "saliency.occlusion.window=0.5"))[0]
    assert changed == {"scan", "split_params", *SALIENCY, "aggregate", "words", "plot",
                       "report"}
    # no saliency cells: no map is computed, and the figures go
    off = repro(root, _overrides(photos, "saliency.cells=[]"))[0]
    assert not {s for s in off if s.startswith("saliency@")}
    assert not list((root / "plots" / "figures").glob("saliency_*"))
