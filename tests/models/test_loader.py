"""Model building: no random initialisation before a checkpoint, and warm reuse in a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cliprobe.config.schema import ModelConfig
from cliprobe.models import loader

RANDOM = ModelConfig(arch="cliprobe-smoke", pretrained=None, random_init_seed=0)


def _count_initialisers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for name in ("normal_", "kaiming_uniform_", "uniform_", "zeros_", "ones_", "trunc_normal_"):
        original = getattr(torch.nn.init, name)

        def counting(*args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch.nn.init, name, counting)
    return calls


def test_a_checkpoint_is_loaded_without_random_init_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = loader.load_model("smoke", RANDOM, "cpu").model
    checkpoint = tmp_path / "smoke.pt"
    torch.save(reference.state_dict(), checkpoint)
    calls = _count_initialisers(monkeypatch)
    loaded = loader.load_model("smoke", RANDOM.model_copy(update={
        "pretrained": str(checkpoint), "random_init_seed": None}), "cpu").model
    assert calls == []  # nothing drawn just to be overwritten
    for (name, ours), (_, theirs) in zip(loaded.named_parameters(),
                                         reference.named_parameters(), strict=True):
        assert torch.equal(ours, theirs), name
    for (name, ours), (_, theirs) in zip(loaded.named_buffers(), reference.named_buffers(),
                                         strict=True):
        assert torch.equal(ours, theirs), name  # computed buffers (attention mask) too
    loader.load_model("smoke-random", RANDOM, "cpu")
    assert calls  # random weights still draw their init


def test_a_worker_keeps_the_model_and_the_rng_state_after_loading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_KEPT", None)
    loader.keep_loaded_models()
    first = loader.load_model("smoke", RANDOM, "cpu")
    after_load = torch.get_rng_state()
    torch.rand(10)  # a stage draws from the RNG
    again = loader.load_model("smoke", RANDOM, "cpu")
    assert again is first
    assert torch.equal(torch.get_rng_state(), after_load)  # as a fresh process would be
    other = loader.load_model("smoke", RANDOM.model_copy(update={"random_init_seed": 1}), "cpu")
    assert other is not first
