"""The captions stage: empty (without loading a model) for datasets without captions; for a
caption dataset, one L2-normalised text embedding per caption, as the text encoder gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cliprobe import paths
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.datasets.captions import captions_table, write_captions
from cliprobe.io.caption_embeddings import read_caption_embeddings
from cliprobe.stages import captions as stage

CONF = Path(__file__).resolve().parents[1] / "conf"


def _project(root: Path, dataset: str) -> None:
    raw = compose_params(CONF, ["model=smoke", f"dataset=[{dataset}]", "embed.device=cpu"])
    (root / "params.yaml").write_text(to_yaml(raw))


def test_no_captions_means_an_empty_file_and_no_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "sample")
    write_captions(captions_table([]), paths.captions_path("sample"), {})

    def no_model(*_: object, **__: object) -> None:
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr("cliprobe.models.load_model", no_model)
    stage.main(["--model", "smoke", "--dataset", "sample"])
    table = read_caption_embeddings(paths.caption_embeddings_path("smoke", "sample"))
    assert len(table) == 0 and table.metadata["skipped"] == "the dataset has no captions"


def test_captions_are_encoded_once_with_the_text_tower(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smoke_model) -> None:
    from cliprobe.metrics.zeroshot import encode_text_fn

    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "captions_folder")
    texts = {"a.png": ["a cat on a sofa", "a sleeping cat"], "b.png": ["a red bus"]}
    write_captions(captions_table(texts.items()), paths.captions_path("captions_folder"), {})
    stage.main(["--model", "smoke", "--dataset", "captions_folder"])
    table = read_caption_embeddings(paths.caption_embeddings_path("smoke", "captions_folder"))
    assert table.caption_ids.tolist() == ["a.png#0", "a.png#1", "b.png#0"]
    assert table.image_ids.tolist() == ["a.png", "a.png", "b.png"]
    expected = encode_text_fn(smoke_model)(["a cat on a sofa", "a sleeping cat", "a red bus"])
    np.testing.assert_allclose(table.vectors, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-6)
    assert table.metadata["n_captions"] == 3 and table.metadata["random_weights"]
