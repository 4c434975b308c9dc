"""The bundled prompt data (src/cliprobe/prompt_data): every file loads and cites its source,
every dataset config names one, and, when CLIP_benchmark is installed beside the project, the
CLIP-paper sets equal what CLIP_benchmark uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from cliprobe.prompt_data import bundled_names, class_name_map, load_prompt_data

ROOT = Path(__file__).resolve().parents[1]
CLIP_BENCHMARK_PYTHON = os.environ.get("CLIPROBE_CLIP_BENCHMARK_PYTHON",
                                       "/work/ext/cb-venv/bin/python")


def test_bundled_sets() -> None:
    assert bundled_names() == [
        "clip_caltech101", "clip_cifar10", "clip_cifar100", "clip_dtd", "clip_flowers102",
        "clip_food101", "clip_imagenet", "clip_oxford_pets", "clip_stl10", "imagenet80",
        "photo_of", "this_is"]


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_set_loads_and_cites_its_source(name: str) -> None:
    data = load_prompt_data(name)
    assert data.name == name
    assert data.source
    assert all(t.count("{}") == 1 for t in data.templates)
    text = (ROOT / "src" / "cliprobe" / "prompt_data" / f"{name}.yaml").read_text()
    assert text.startswith("#")  # a comment says what the file is and where it comes from
    if name.startswith("clip_") and name != "clip_imagenet":
        assert "openai/CLIP data/prompts.md @ d05afc4" in data.source
        assert "MIT License" in data.source


def test_published_counts() -> None:
    counts = {name: (len(load_prompt_data(name).classes or ()),
                     len(load_prompt_data(name).templates)) for name in bundled_names()}
    assert counts == {
        "clip_caltech101": (102, 34), "clip_cifar10": (10, 18), "clip_cifar100": (100, 18),
        "clip_dtd": (47, 8), "clip_flowers102": (102, 1), "clip_food101": (101, 1),
        "clip_imagenet": (1000, 80), "clip_oxford_pets": (37, 1), "clip_stl10": (10, 2),
        "imagenet80": (0, 80), "photo_of": (0, 1), "this_is": (0, 1)}
    assert load_prompt_data("clip_food101").templates == ("a photo of {}, a type of food.",)


def test_every_dataset_config_names_bundled_prompt_data() -> None:
    for file in sorted((ROOT / "conf" / "dataset").glob("*.yaml")):
        (config,) = yaml.safe_load(file.read_text()).values()
        reference = config.get("prompts") or "photo_of"
        assert reference in bundled_names(), file.name
    expected = {"cifar10": "clip_cifar10", "imagenet_val": "clip_imagenet",
                "imagenet_r": "clip_imagenet", "oxford_pets": "clip_oxford_pets"}
    for dataset, name in expected.items():
        (config,) = yaml.safe_load((ROOT / "conf" / "dataset" / f"{dataset}.yaml")
                                   .read_text()).values()
        assert config["prompts"] == name


def test_name_match_ignores_case_and_underscores() -> None:
    pets = load_prompt_data("clip_oxford_pets")
    labels = ["American Bulldog", "Great Pyrenees", "Abyssinian"]
    assert class_name_map(pets, labels, labels) == {
        "American Bulldog": "american bulldog", "Great Pyrenees": "great pyrenees",
        "Abyssinian": "Abyssinian"}


@pytest.mark.skipif(not Path(CLIP_BENCHMARK_PYTHON).is_file(),
                    reason=f"CLIP_benchmark is not installed beside the project "
                           f"({CLIP_BENCHMARK_PYTHON}; set CLIPROBE_CLIP_BENCHMARK_PYTHON)")
def test_the_clip_sets_equal_clip_benchmarks() -> None:
    """Templates equal CLIP_benchmark's for all 9 sets; class names equal where CLIP_benchmark
    lists them (ImageNet, Caltech-101, Flowers-102); Pets: the same 37 names up to case (it
    title-cases torchvision's names); the others take torchvision's names in CLIP_benchmark."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from clip_prompt_data import clip_benchmark_data, compare
    finally:
        sys.path.pop(0)
    rows = {row["set"]: row for row in compare(CLIP_BENCHMARK_PYTHON)}
    assert len(rows) == 9
    assert all(row["templates_equal"] is True for row in rows.values()), rows
    for name in ("clip_imagenet", "clip_caltech101", "clip_flowers102"):
        assert rows[name]["classes_equal"] is True, name
    classnames, _ = clip_benchmark_data(CLIP_BENCHMARK_PYTHON)
    ours = load_prompt_data("clip_oxford_pets").classes or ()
    assert sorted(c.lower() for c in ours) == sorted(c.lower() for c in classnames["pets"])
