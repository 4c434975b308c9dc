"""Encode batches of preprocessed images into L2-normalised float32 embeddings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np


def make_image_encoder(
    model: Any, device: str, precision: str, features: str = "global",
    feature_params: dict[str, Any] | None = None,
) -> Callable[[Any], np.ndarray]:
    """A function mapping a ``(B, 3, H, W)`` tensor to ``(B, D)`` float32 unit vectors.

    ``features`` other than ``global`` pool the visual tower's feature map instead
    (:mod:`cliprobe.models.features`: mac, rmac, multipatch).
    """
    import torch

    if features != "global":
        from cliprobe.models.features import extract_features

        params = feature_params or {}

        def encode_variant(batch: Any) -> np.ndarray:
            images = batch.to(device=device, non_blocking=device.startswith("cuda"))
            with torch.inference_mode():
                return extract_features(features, images, model, **params)

        return encode_variant

    device_type = torch.device(device).type
    if precision in {"amp", "amp_bf16"} and device_type != "cpu":
        dtype = torch.bfloat16 if precision == "amp_bf16" else torch.float16
        autocast: Callable[[], Any] = lambda: torch.autocast(device_type, dtype=dtype)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    input_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    non_blocking = device_type == "cuda"

    def encode(batch: Any) -> np.ndarray:
        with torch.inference_mode(), autocast():
            images = batch.to(device=device, dtype=input_dtype, non_blocking=non_blocking)
            features = model.encode_image(images).float()
            features = torch.nn.functional.normalize(features, dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    return encode


def output_dim(encode: Callable[[Any], np.ndarray], preprocess: Callable[[Any], Any]) -> int:
    """Width of ``encode``'s vectors, found by encoding one blank image (feature variants
    such as MAC on a ResNet are wider than the model's embedding)."""
    import torch
    from PIL import Image

    return int(encode(torch.stack([preprocess(Image.new("RGB", (32, 32)))])).shape[1])
