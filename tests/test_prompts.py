"""Prompt sets: the conf/prompts files, their Hydra composition and the per-class texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from cliprobe.config.compose import compose_params
from cliprobe.errors import ConfigError, DataError
from cliprobe.metrics.zeroshot import build_classifier
from cliprobe.prompts import (
    PromptSet,
    class_prompts,
    load_descriptions,
    resolve_class_prompts,
    templates_of,
    texts_for_class,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
PROMPT_FILES = sorted((CONF / "prompts").glob("*.yaml"))


def _load(name: str) -> PromptSet:
    return PromptSet.model_validate(yaml.safe_load((CONF / "prompts" / f"{name}.yaml").read_text()))


def test_the_prompt_sets_exist_and_dataset_is_the_default() -> None:
    assert [p.stem for p in PROMPT_FILES] == ["dataset", "descriptions", "imagenet80",
                                              "photo_of", "this_is"]
    assert compose_params(CONF, [])["prompts"] == {"name": "dataset", "kind": "dataset"}


@pytest.mark.parametrize("file", PROMPT_FILES, ids=lambda p: p.stem)
def test_every_prompt_file_composes_as_the_prompts_group(file: Path) -> None:
    composed = compose_params(CONF, [f"prompts={file.stem}"])["prompts"]
    assert composed == yaml.safe_load(file.read_text())  # plain: the group is the package
    assert PromptSet.model_validate(composed).name == file.stem


def test_photo_of_composes_to_the_expected_mapping() -> None:
    composed = compose_params(CONF, ["prompts=photo_of"])
    assert composed["prompts"] == {
        "name": "photo_of", "kind": "templates", "templates": ["a photo of a {}."]}


def test_imagenet80_reads_open_clips_templates_at_run_time() -> None:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    expected = [template("{}") for template in OPENAI_IMAGENET_TEMPLATES]
    assert len(expected) == 80
    assert _load("imagenet80").templates == []  # nothing copied
    assert templates_of(_load("imagenet80")) == expected
    assert texts_for_class(_load("imagenet80"), "cat")[0] == "a bad photo of a cat."


def test_seed_002s_prompt_is_verbatim() -> None:
    assert texts_for_class(_load("this_is"), "Radcliffe Camera") == [
        "This is a photo of Radcliffe Camera"]


def test_templates_are_filled_with_the_class_name() -> None:
    prompts = PromptSet(name="two", templates=["a photo of a {}.", "a {} in a video game."])
    assert texts_for_class(prompts, "cat") == ["a photo of a cat.", "a cat in a video game."]
    assert class_prompts(prompts, ["egg", "cat"]) == {
        "egg": ["a photo of a egg.", "a egg in a video game."],
        "cat": ["a photo of a cat.", "a cat in a video game."],
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "x", "templates": []},
        {"name": "x", "templates": ["a photo"]},
        {"name": "x", "templates": ["a {c}"]},           # CLIP_benchmark's style: use {}
        {"name": "x", "templates": ["{} and {}"]},
        {"name": "x", "kind": "descriptions", "templates": ["a {}"]},
        {"name": "x", "kind": "descriptions", "description_template": "{name}"},
        {"name": "x", "kind": "words"},
        {"name": "x", "templates": ["a {}"], "colour": "red"},
        {"name": "x", "templates": ["a {}"], "templates_from": "photo_of"},
        {"name": "x", "kind": "dataset", "templates": ["a {}"]},
    ],
)
def test_invalid_prompt_sets_are_rejected(raw: dict) -> None:
    with pytest.raises(ValidationError):
        PromptSet.model_validate(raw)


@pytest.fixture
def descriptions_csv(tmp_path: Path) -> Path:
    file = tmp_path / "descriptions.csv"
    file.write_text(
        "label,description\n"
        "egg,\"an oval object, laid by a bird\"\n"
        "cat,a small domesticated carnivorous mammal\n"
        "cat,a furry pet that purrs\n"
    )
    return file


def test_descriptions_are_read_per_class(descriptions_csv: Path) -> None:
    assert load_descriptions(descriptions_csv) == {
        "egg": ["an oval object, laid by a bird"],
        "cat": ["a small domesticated carnivorous mammal", "a furry pet that purrs"],
    }
    prompts = _load("descriptions")
    texts = class_prompts(prompts, ["cat", "egg"], descriptions_csv)
    assert texts["cat"] == ["a small domesticated carnivorous mammal", "a furry pet that purrs"]
    named = prompts.model_copy(update={"description_template": "{name} is {description}"})
    assert texts_for_class(named, "egg", load_descriptions(descriptions_csv)) == [
        "egg is an oval object, laid by a bird"]


def test_the_prompt_sets_csv_wins_over_the_datasets(
    descriptions_csv: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("label,description\ncat,other text\negg,other egg\n")
    prompts = _load("descriptions").model_copy(update={"descriptions_csv": str(other)})
    assert class_prompts(prompts, ["cat"], descriptions_csv) == {"cat": ["other text"]}


def test_description_errors_are_one_actionable_sentence(
    descriptions_csv: Path, tmp_path: Path
) -> None:
    prompts = _load("descriptions")
    with pytest.raises(DataError, match=r"no description for class 'dog'.*add a row"):
        class_prompts(prompts, ["cat", "dog"], descriptions_csv)
    with pytest.raises(ConfigError, match="descriptions_csv"):
        class_prompts(prompts, ["cat"])
    with pytest.raises(DataError, match="does not exist"):
        class_prompts(prompts, ["cat"], tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("class,text\ncat,a cat\n")
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['description', 'label'\]"):
        load_descriptions(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("label,description\ncat,\n")
    with pytest.raises(DataError, match="empty"):
        load_descriptions(empty)


def test_descriptions_feed_the_classifier(descriptions_csv: Path) -> None:
    vectors = {
        "an oval object, laid by a bird": [1.0, 0.0],
        "a small domesticated carnivorous mammal": [0.0, 2.0],
        "a furry pet that purrs": [0.0, 1.0],
    }
    texts = class_prompts(_load("descriptions"), ["egg", "cat"], descriptions_csv)
    weights = build_classifier(["egg", "cat"], texts,
                               lambda batch: np.array([vectors[t] for t in batch]))
    np.testing.assert_allclose(weights, [[1.0, 0.0], [0.0, 1.0]], atol=1e-7)


# --- each dataset's own prompts (the default prompt set `dataset`) ------------------------------


def test_the_default_uses_each_datasets_templates_and_published_class_names() -> None:
    """CIFAR-100's 18 CLIP templates filled with CLIP's names; Caltech-101's folder labels get
    CLIP's names by class index ('Faces' -> 'off-center face'), ImageNet's OpenAI names keep
    their duplicates ('missile' twice) while the labels stay unique."""
    dataset = PromptSet(name="dataset", kind="dataset")
    cifar = resolve_class_prompts(dataset, ["aquarium fish", "apple"], ["aquarium fish", "apple"],
                                  ["apple", "aquarium fish"], dataset_prompts="clip_cifar100")
    assert cifar.texts["aquarium fish"][0] == "a photo of a aquarium fish."
    assert len(cifar.texts["apple"]) == 18
    assert cifar.record["dataset_prompts"] == "clip_cifar100"
    assert "openai/CLIP data/prompts.md" in cifar.record["templates_from"]

    folders = ["Faces", "Faces easy", "Leopards", "Motorbikes", "accordion"]
    order = folders + [f"class {i}" for i in range(96)]  # torchvision's 101 categories
    caltech = resolve_class_prompts(dataset, folders, order, order,
                                    dataset_prompts="clip_caltech101")
    assert caltech.names["Faces"] == "off-center face"
    assert caltech.names["Faces easy"] == "centered face"
    assert caltech.texts["Leopards"][0] == "a photo of a leopard."
    assert caltech.record["renamed_classes"] == 4

    from cliprobe.datasets.sources.imagenet import imagenet_class_names

    labels = list(imagenet_class_names())
    imagenet = resolve_class_prompts(dataset, labels, labels, labels,
                                     dataset_prompts="clip_imagenet")
    assert labels[744] == "projectile" and imagenet.names[labels[744]] == "missile"
    assert imagenet.names[labels[657]] == "missile"
    assert imagenet.names[labels[836]] == imagenet.names[labels[837]] == "sunglasses"
    assert len(imagenet.texts[labels[0]]) == 80
    assert imagenet.record["class_names"] == "dataset"
    renamed = resolve_class_prompts(dataset, labels, labels, labels,
                                    dataset_prompts="clip_imagenet", class_names="labels")
    assert renamed.names[labels[744]] == "projectile"
    assert renamed.record["class_names_from"] == "the dataset's labels"


def test_a_global_prompt_set_overrides_the_templates_but_keeps_the_class_names() -> None:
    pets = ["American Bulldog", "Abyssinian"]
    chosen = resolve_class_prompts(_load("photo_of"), [*pets, "cat"], pets, sorted(pets),
                                   dataset_prompts="clip_oxford_pets")
    # CLIP's Pets names are lower case ('american bulldog'); matched by name, not position
    assert chosen.texts == {"American Bulldog": ["a photo of a american bulldog."],
                            "Abyssinian": ["a photo of a Abyssinian."],
                            "cat": ["a photo of a cat."]}  # an extra class keeps its text
    assert chosen.record["templates_from"] == "inline (params.yaml prompts.templates)"


def test_prompt_data_for_another_dataset_fails_in_one_sentence() -> None:
    dataset = PromptSet(name="dataset", kind="dataset")
    with pytest.raises(ConfigError, match=r"no class name for 1 label.*'kangaroo'"):
        resolve_class_prompts(dataset, ["cat", "kangaroo"], ["cat", "kangaroo"],
                              ["cat", "kangaroo"], dataset_prompts="clip_cifar10")
    with pytest.raises(ConfigError, match="lists 101 classes but the dataset's class order has 2"):
        resolve_class_prompts(dataset, ["a", "b"], ["a", "b"], ["a", "b"],
                              dataset_prompts="clip_caltech101")
    with pytest.raises(ConfigError, match="unknown prompt data 'nope'"):
        resolve_class_prompts(dataset, ["a"], ["a"], ["a"], dataset_prompts="nope")


def test_own_prompt_data_file_per_dataset(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("source: my lab notes\nclasses: [Felis catus]\nmatch: position\n"
                    "templates: ['a photo of my {}.']\n")
    chosen = resolve_class_prompts(PromptSet(name="dataset", kind="dataset"), ["cat"], ["cat"],
                                   ["cat"], dataset_prompts=str(mine))
    assert chosen.texts == {"cat": ["a photo of my Felis catus."]}
    mine.write_text("templates: ['a photo of my {}.']\n")
    from cliprobe.prompt_data import load_prompt_data

    load_prompt_data.cache_clear()
    with pytest.raises(ConfigError, match="must cite its source"):
        load_prompt_data(str(mine))
