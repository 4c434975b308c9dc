"""The model front door: smoke model, checkpoint files, clear failures, QuickGELU."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cliprobe.config.schema import ModelConfig
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.errors import ConfigError, MissingWeightsError
from cliprobe.models import load_model
from cliprobe.models import loader as model_loader


def _embed(loaded, image: Image.Image) -> np.ndarray:  # type: ignore[no-untyped-def]
    encode = make_image_encoder(loaded.model, loaded.device, loaded.config.precision)
    return encode(loaded.preprocess(image).unsqueeze(0))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def test_smoke_model_is_seeded_and_labelled(smoke_model, photo: Image.Image) -> None:  # type: ignore[no-untyped-def]
    again = load_model("smoke", smoke_model.config, "cpu")
    np.testing.assert_array_equal(_embed(smoke_model, photo), _embed(again, photo))
    other = load_model("smoke", smoke_model.config.model_copy(update={"random_init_seed": 1}),
                       "cpu")
    assert not np.allclose(_embed(smoke_model, photo), _embed(other, photo))
    assert "RANDOM WEIGHTS" in smoke_model.weights
    assert smoke_model.provenance["random_weights"] is True
    vector = _embed(smoke_model, photo)
    assert vector.shape == (1, 64) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_local_checkpoint_file_loads_the_same_weights(
    smoke_model, photo: Image.Image, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    checkpoint = tmp_path / "smoke.pt"
    torch.save(smoke_model.model.state_dict(), checkpoint)
    config = ModelConfig(arch="cliprobe-smoke", pretrained=str(checkpoint))
    from_file = load_model("from_file", config, "cpu")
    np.testing.assert_array_equal(_embed(smoke_model, photo), _embed(from_file, photo))
    assert from_file.provenance["random_weights"] is False


def test_missing_checkpoint_file_is_one_sentence(tmp_path: Path) -> None:
    config = ModelConfig(arch="cliprobe-smoke", pretrained=str(tmp_path / "nope.pt"))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_model("x", config, "cpu")


def test_unknown_arch_and_tag_list_valid_choices() -> None:
    with pytest.raises(ConfigError, match="ViT-B-32"):
        load_model("m", ModelConfig(arch="ViT-Q-99", pretrained="openai"), "cpu")
    with pytest.raises(ConfigError, match="laion2b_s34b_b79k"):
        load_model("m", ModelConfig(arch="ViT-B-32", pretrained="no_such_tag"), "cpu")


def test_offline_empty_cache_fails_fast_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(model_loader.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(model_loader.OFFLINE_ENV, "1")
    started = time.perf_counter()
    with pytest.raises(MissingWeightsError) as error:
        load_model("ViT-B-32", ModelConfig(arch="ViT-B-32", pretrained="openai"), "cpu")
    assert time.perf_counter() - started < 20
    message = str(error.value)
    assert "ViT-B-32" in message and str(tmp_path) in message and "pretrained=" in message
    assert "\n" not in message


def test_quick_gelu_follows_the_pretrained_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip

    tag_cfg = open_clip.get_pretrained_cfg("ViT-B-32", "openai")
    # weights are not downloadable here: build the architecture the tag implies, randomly
    monkeypatch.setattr(model_loader, "resolve_checkpoint", lambda name, config: (None, tag_cfg))
    loaded = load_model("ViT-B-32", ModelConfig(arch="ViT-B-32", pretrained="openai"), "cpu")
    assert loaded.provenance["quick_gelu"] is True
    assert isinstance(loaded.model.visual.transformer.resblocks[0].mlp.gelu,
                      open_clip.transformer.QuickGELU)
    forced = load_model("x", ModelConfig(arch="ViT-B-32", pretrained="openai",
                                         force_quick_gelu=False), "cpu")
    assert forced.provenance["quick_gelu"] is False


def test_embed_stage_offline_prints_one_line_and_no_traceback(tmp_path: Path, repo: Path) -> None:
    """The real entry point, as DVC runs it, with the default model and no weights."""
    from cliprobe.config.compose import compose_params, to_yaml

    (tmp_path / "params.yaml").write_text(to_yaml(compose_params(repo / "conf")))
    manifest = tmp_path / "data" / "manifests" / "sample.parquet"
    manifest.parent.mkdir(parents=True)
    import pandas as pd

    from cliprobe.datasets.manifest import build_manifest, write_manifest

    write_manifest(build_manifest(pd.DataFrame({"image_id": ["a.png"], "path": ["a.png"],
                                                "label": ["x"]})), manifest, {})
    env = {"PATH": "/usr/bin:/bin", "CLIPROBE_OFFLINE": "1",
           "CLIPROBE_MODEL_CACHE": str(tmp_path / "empty-cache"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cliprobe.stages.embed", "--model", "ViT-B-32", "--dataset",
         "sample", "--manipulation", "original"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cliprobe: error:")]
    # the sentence a user reads: which model, which cache, why, and every way out
    assert errors == [
        "cliprobe: error: model 'ViT-B-32' (open_clip ViT-B-32, pretrained 'openai') has no "
        f"weights in the cache {tmp_path / 'empty-cache'} and they cannot be downloaded (no "
        "network): download them once on a machine with network (python -c \"import "
        "open_clip; open_clip.create_model('ViT-B-32', pretrained='openai')\") and copy that "
        "cache here (or point $CLIPROBE_MODEL_CACHE at it), or set "
        "model.ViT-B-32.pretrained=/path/to/checkpoint, or run offline with the random-weight "
        "model=smoke (`dvc exp run -S model=smoke` or `make repro OVERRIDES=model=smoke`)"
    ]


def _model_folder(smoke_model, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    """An open_clip model folder (what hf-hub repositories hold): config + weights."""
    import json

    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(smoke_model.model.state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": open_clip.get_model_config("cliprobe-smoke"),
        "preprocess_cfg": {"mean": list(smoke_model.model.visual.image_mean),
                           "std": list(smoke_model.model.visual.image_std)}}))
    return folder


def test_local_dir_models_load_their_own_config_and_weights(
    smoke_model, photo: Image.Image, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    folder = _model_folder(smoke_model, tmp_path / "my-model")
    loaded = load_model("mine", ModelConfig(arch=f"local-dir:{folder}"), "cpu")
    np.testing.assert_array_equal(_embed(smoke_model, photo), _embed(loaded, photo))
    assert loaded.provenance["random_weights"] is False
    assert loaded.weights.startswith(f"local-dir:{folder}")
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(MissingWeightsError, match=r"is not a model folder.*local-dir:/path"):
        load_model("mine", ModelConfig(arch=f"local-dir:{folder}"), "cpu")


def test_hf_hub_models_come_from_the_cache_without_network(
    smoke_model, photo: Image.Image, tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hf-hub model already in the Hugging Face cache loads offline, from its snapshot."""
    repo = tmp_path / "hub" / "models--cliprobe--smoke-clip"
    _model_folder(smoke_model, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv(model_loader.CACHE_ENV, str(tmp_path / "hub"))
    monkeypatch.setenv(model_loader.OFFLINE_ENV, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model("hub", ModelConfig(arch="hf-hub:cliprobe/smoke-clip"), "cpu")
    np.testing.assert_array_equal(_embed(smoke_model, photo), _embed(loaded, photo))
    assert "hf-hub:cliprobe/smoke-clip" in loaded.weights and "0123abcd" in loaded.weights
    started = time.perf_counter()
    with pytest.raises(MissingWeightsError) as error:
        load_model("other", ModelConfig(arch="hf-hub:cliprobe/not-cached"), "cpu")
    assert time.perf_counter() - started < 20
    message = str(error.value)
    assert "hf-hub:cliprobe/not-cached" in message and "no network" in message
    assert "local-dir:" in message and "model=smoke" in message and "\n" not in message


def test_schema_names_bring_their_weights() -> None:
    assert not ModelConfig(arch="hf-hub:org/repo").is_random
    with pytest.raises(ValueError, match="bring their own weights; set pretrained to null"):
        ModelConfig(arch="hf-hub:org/repo", pretrained="openai")
