"""End to end: a caption dataset through real DVC with the smoke model, as a user runs it:
``dvc exp run -S 'dataset=[captions_folder]' -S 'manipulation=[blurred,typographic]'``.

Checks the cells are cached (a second run runs nothing), that every cell carries image <-> text
recalls, that the typographic cell wrote vocabulary words its image's captions do not use and
scored the word search, and that the new metrics reach summary.json (what `dvc metrics diff`
reads), comparisons.csv, the heatmap and the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cliprobe.devtools import RAN, make_project, run

pytestmark = pytest.mark.slow

# 10 images (the gallery must hold retrieval.neighbours = 9 besides the query's own image, which
# seed 001's leave-one-out score leaves out), 2-3 captions each
CAPTIONS = {
    "cat.png": ["a tabby cat looking at the camera", "a striped cat indoors", "a cat"],
    "coffee.png": ["a cup of coffee on a saucer", "coffee with foam in a white cup"],
    "astronaut.png": ["an astronaut in a white spacesuit", "a person next to a flag"],
    "rocket.png": ["a rocket on the launch pad", "a tall rocket before launch"],
    "camera.png": ["a man with a camera on a tripod", "a black and white photographer"],
    "chelsea_flip.png": ["a cat seen upside down", "an upside-down photo of a cat"],
    "coffee_crop.png": ["a close-up of a coffee cup", "coffee, cropped"],
    "astronaut_mirror.png": ["a mirrored astronaut", "an astronaut and a flag, mirrored",
                             "a space suit"],
    "rocket_crop.png": ["part of a rocket", "a rocket's body up close"],
    "camera_flip.png": ["a cameraman upside down", "a tripod photo flipped"],
}


def _images(folder: Path) -> None:
    from skimage import data

    pictures = {"cat": data.chelsea(), "coffee": data.coffee(), "astronaut": data.astronaut(),
                "rocket": data.rocket(), "camera": data.camera()}
    views = {**{f"{name}.png": pixels for name, pixels in pictures.items()},
             "chelsea_flip.png": pictures["cat"][::-1], "coffee_crop.png":
             pictures["coffee"][40:-40, 60:-60], "astronaut_mirror.png":
             pictures["astronaut"][:, ::-1], "rocket_crop.png": pictures["rocket"][50:-50],
             "camera_flip.png": pictures["camera"][::-1]}
    folder.mkdir(parents=True)
    for name, pixels in views.items():
        Image.fromarray(pixels.copy()).save(folder / name)
    rows = [{"path": name, "caption": text} for name, texts in CAPTIONS.items() for text in texts]
    pd.DataFrame(rows).to_csv(folder / "captions.csv", index=False)


def test_caption_dataset_runs_as_cached_cells(tmp_path: Path, repo: Path) -> None:
    project = make_project(tmp_path / "project", repo)
    folder = tmp_path / "pictures"
    _images(folder)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], project)
    command = ["dvc", "exp", "run", "-S", "model=smoke", "-S", "dataset=[captions_folder]",
               "-S", "manipulation=[blurred,typographic]", "-S", "embed.num_workers=0",
               "-S", "stats.bootstrap_resamples=200", "-S", "retrieval.neighbours=9",
               "-S", f"dataset.captions_folder.source.path={folder}",
               "-S", f"dataset.captions_folder.source.captions_csv={folder / 'captions.csv'}",
               "-S", "dataset.captions_folder.source.words=[cat,dog,rocket,pizza,bus,clock]"]
    first = set(RAN.findall(run(command, project)))
    cells = {"embed@smoke-captions_folder", "captions@smoke-captions_folder",
             "classifier@smoke-captions_folder", "score_original@smoke-captions_folder",
             *(f"{stage}@smoke-captions_folder-{x}" for stage in ("manipulate", "score")
               for x in ("blurred", "typographic"))}
    assert first == {"scan", "split_params", "fetch@captions_folder", *cells, "aggregate",
                     "words", "plot", "report"}
    assert set(RAN.findall(run(command, project))) == {"scan"}  # cached

    summary = json.loads((project / "metrics" / "summary.json").read_text())
    tree = summary["smoke"]["captions_folder"]
    for cell in ("original", "blurred", "typographic"):
        for k in (1, 5, 10):
            assert 0.0 <= tree[cell][f"text_to_image_recall_at_{k}"] <= 1.0
            assert 0.0 <= tree[cell][f"image_to_text_recall_at_{k}"] <= 1.0
        assert "recall_class_at_1" not in tree[cell] and "zeroshot_acc1" not in tree[cell]
        assert tree[cell]["n_images"] == 10
    assert tree["original"]["text_to_image_recall_at_10"] == 1.0  # 10 images: always found
    assert "word_search_above_clean" in tree["typographic"]
    assert "attack_success_rate" in tree["typographic"]

    manifest = pd.read_parquet(project / "data" / "manifests" / "captions_folder.parquet")
    captions = pd.read_parquet(project / "data" / "manifests"
                               / "captions_folder.captions.parquet")
    assert len(captions) == sum(map(len, CAPTIONS.values())) and set(manifest["label"]) == {""}
    typographic = pd.read_parquet(project / "data" / "embeddings" / "smoke" / "captions_folder"
                                  / "typographic.parquet")
    excluded = dict(zip(manifest["image_id"], manifest["words_in_captions"], strict=True))
    for image_id, info in zip(typographic["image_id"], typographic["info"], strict=True):
        word = json.loads(info)["word_label"]
        assert word in {"cat", "dog", "rocket", "pizza", "bus", "clock"}
        assert word not in json.loads(excluded[image_id])  # never a word its captions use
    cell = json.loads((project / "data" / "cells" / "smoke" / "captions_folder" / "typographic"
                       / "metrics.json").read_text())
    assert cell["captions"]["n_captions"] == len(captions)
    assert "CLIP_benchmark" in cell["captions"]["protocol"]
    assert cell["zeroshot"]["word_search"]["query"] == "a photo of a {}"

    comparisons = pd.read_csv(project / "metrics" / "comparisons.csv")
    assert {"text_to_image_recall_at_1", "image_to_text_recall_at_1"} <= set(
        comparisons["metric"])
    assert set(comparisons.loc[comparisons["metric"].str.startswith("text_to_image"),
                               "manipulation"]) == {"blurred", "typographic"}
    report = (project / "plots" / "report.html").read_text()
    assert "text_to_image_recall_at_1" in report and "image_to_text_recall_at_10" in report
    from cliprobe.metrics.registry import unregistered

    assert unregistered(pd.read_csv(project / "metrics" / "cells.csv")["metric"]) == []
    assert (project / "plots" / "figures" / "heatmap_smoke.png").is_file()
