"""bf16 on CPU runs the model's weights in bf16 (not autocast), and the stage says how."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cliprobe.config.schema import ModelConfig
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.models import load_model
from cliprobe.models.hardware import bf16_hint, cpu_bf16

FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f {extra}\n"


def test_bf16_on_cpu_holds_the_weights_in_bf16() -> None:
    config = ModelConfig(arch="cliprobe-smoke", pretrained=None, random_init_seed=0)
    full = load_model("smoke", config, "cpu")
    low = load_model("smoke", config.model_copy(update={"precision": "bf16"}), "cpu")
    linears = [m for m in low.model.visual.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    batch = torch.stack([full.preprocess(img) for img in _photos()])
    fp32 = make_image_encoder(full.model, "cpu", "fp32")(batch)
    bf16 = make_image_encoder(low.model, "cpu", "bf16")(batch)
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-5)
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() > 0.99 and not np.array_equal(fp32, bf16)


def _photos():  # type: ignore[no-untyped-def]
    from PIL import Image
    from skimage import data

    return [Image.fromarray(data.astronaut()), Image.fromarray(data.chelsea())]


def test_the_hint_names_the_hardware_and_the_override(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(FLAGS.format(extra="avx512_bf16 amx_bf16"))
    assert cpu_bf16(cpuinfo) == "AMX-BF16"
    hint = bf16_hint("ViT-B-32", "fp32", "cpu", cpuinfo)
    assert hint is not None and "AMX-BF16" in hint
    assert "-S model.ViT-B-32.precision=bf16" in hint
    assert bf16_hint("ViT-B-32", "bf16", "cpu", cpuinfo) is None  # already used
    assert bf16_hint("ViT-B-32", "fp32", "cuda", cpuinfo) is None
    assert "several times faster" in hint
    cpuinfo.write_text(FLAGS.format(extra="avx512_bf16"))
    assert cpu_bf16(cpuinfo) == "AVX512-BF16"
    hint = bf16_hint("ViT-B-32", "fp32", "cpu", cpuinfo)  # measured 1.91x on a quiet AMD EPYC
    assert hint is not None and "several times" not in hint and "precision.py" in hint
    assert "about twice as fast" in hint
    cpuinfo.write_text(FLAGS.format(extra=""))
    assert bf16_hint("ViT-B-32", "fp32", "cpu", cpuinfo) is None
    assert cpu_bf16(tmp_path / "missing") is None
