"""The dataset catalogue in conf/dataset: every file is complete and consistent with the code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.sources import SOURCES
from cliprobe.datasets.sources.imagenet import VARIANTS
from cliprobe.prompt_data import bundled_names

CONF = Path(__file__).resolve().parents[2] / "conf"
FILES = sorted((CONF / "dataset").glob("*.yaml"))
CATALOGUE = [f for f in FILES if f.stem not in {"sample", "image_folder", "captions_folder",
                                                "typographic_in_the_wild"}]


def _load(path: Path) -> tuple[str, DatasetConfig]:
    raw = yaml.safe_load(path.read_text())
    (name, body), = raw.items()
    return name, DatasetConfig.model_validate(body)


def test_every_source_kind_has_a_dataset_file() -> None:
    kinds = {_load(path)[1].source.kind for path in FILES}
    assert kinds == set(SOURCES)


@pytest.mark.parametrize("path", CATALOGUE, ids=lambda p: p.stem)
def test_each_dataset_records_license_version_and_prompts(path: Path) -> None:
    name, config = _load(path)
    assert name == path.stem
    assert config.license and config.prompts
    # the dataset's own class names and templates: bundled prompt data (src/cliprobe/prompt_data)
    assert config.prompts in bundled_names()
    if config.source.kind not in {"url_list"}:
        assert config.version


def test_imagenet_files_pin_what_the_code_pins() -> None:
    for path in CATALOGUE:
        _, config = _load(path)
        source = config.source
        if source.kind == "imagenet" and source.variant != "val":
            variant = VARIANTS[source.variant]
            assert (source.url, source.sha256, source.md5) == (variant.url, variant.sha256,
                                                               variant.md5)


@pytest.mark.parametrize(("dataset", "stem", "label"), [
    ("brueghel", "A Bridal Procession (Antwerp)", "A Bridal Procession"),
    ("brueghel", "The Wedding Procession (Christie's, London,1965) ", "The Wedding Procession"),
    ("brueghel", "Allegory of Air and Fire", "Allegory of Air and Fire"),
    ("emotions", "sad_0123", "sad"),
    ("roxford5k", "radcliffe_camera_000003", "radcliffe_camera"),
    ("rparis6k", "paris_moulinrouge_000422", "moulinrouge"),
])
def test_label_patterns_of_the_catalogue(dataset: str, stem: str, label: str) -> None:
    from cliprobe.datasets.sources._common import label_from_stem

    _, config = _load(CONF / "dataset" / f"{dataset}.yaml")
    assert label_from_stem(stem, config.source.label_regex) == label
