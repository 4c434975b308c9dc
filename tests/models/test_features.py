"""Feature variants (global, MAC, R-MAC, multi-patch) over ViT and ModifiedResNet towers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from cliprobe.config.schema import FeatureConfig, ModelConfig
from cliprobe.errors import CliprobeError
from cliprobe.models import load_model
from cliprobe.models.features import (
    FEATURE_VARIANTS,
    UnsupportedFeatureError,
    extract_features,
    feature_map,
    mac_pool,
    multipatch_boxes,
    rmac_pool,
    rmac_regions,
)

# --- geometry -------------------------------------------------------------------------------


def test_rmac_regions_on_a_7x7_grid() -> None:
    regions = rmac_regions(7, 7, scales=3)
    assert len(regions) == 1 + 4 + 9
    by_side: dict[int, list[tuple[int, int]]] = {}
    for top, left, side_h, side_w in regions:
        assert side_h == side_w
        assert top >= 0 and left >= 0 and top + side_h <= 7 and left + side_w <= 7
        by_side.setdefault(side_h, []).append((top, left))
    # side floor(2 * 7 / (l + 1)): 7, 4, 3 for l = 1, 2, 3
    assert {side: len(starts) for side, starts in by_side.items()} == {7: 1, 4: 4, 3: 9}
    assert sorted(by_side[4]) == [(0, 0), (0, 3), (3, 0), (3, 3)]
    assert sorted({top for top, _ in by_side[3]}) == [0, 2, 4]
    # regions of each scale together cover the grid
    for starts_side in (4, 3):
        covered = np.zeros((7, 7), dtype=bool)
        for top, left in by_side[starts_side]:
            covered[top : top + starts_side, left : left + starts_side] = True
        assert covered.all()


def test_rmac_regions_on_a_non_square_grid_add_regions_along_the_long_side() -> None:
    regions = rmac_regions(7, 10, scales=3)
    per_side = {s: sum(r[2] == s for r in regions) for s in (7, 4, 3)}
    assert per_side == {7: 2, 4: 2 * 3, 3: 3 * 4}  # l x (l + 1) regions
    assert all(left + side <= 10 and top + side <= 7 for top, left, side, _ in regions)
    assert len(rmac_regions(7, 7, scales=1)) == 1


def test_multipatch_boxes_corners_overlap_40_percent() -> None:
    boxes = multipatch_boxes(224, 224, overlap=0.4)
    assert len(boxes) == 5 and all(b[2:] == (140, 140) for b in boxes)
    (t0, l0, s, _), (t1, l1, _, _) = boxes[0], boxes[1]
    assert t0 == t1 == 0 and (l0 + s - l1) / s == pytest.approx(0.4)
    assert boxes[4][:2] == (42, 42)  # centred
    assert all(t + s <= 224 and left + s <= 224 for t, left, s, _ in boxes)


def test_pooling_by_hand() -> None:
    fmap = torch.zeros(1, 2, 3, 3)
    fmap[0, 0, 0, 0] = 5.0
    fmap[0, 1, 2, 2] = 2.0
    torch.testing.assert_close(mac_pool(fmap), torch.tensor([[5.0, 2.0]]))
    # 7x7-free check of R-MAC: a constant map gives every region the same unit MAC
    const = torch.ones(1, 4, 7, 7)
    pooled = rmac_pool(const, scales=3)
    torch.testing.assert_close(pooled, torch.full((1, 4), 14 * 0.5), rtol=1e-5, atol=1e-5)


# --- models ---------------------------------------------------------------------------------


def _random(arch: str) -> Any:
    return load_model(arch, ModelConfig(arch=arch, pretrained=None, random_init_seed=0), "cpu")


@pytest.fixture(scope="module")
def vit_b32() -> Any:
    return _random("ViT-B-32")


@pytest.fixture(scope="module")
def rn50() -> Any:
    return _random("RN50")


def _batch(model: Any, seed: int = 0) -> torch.Tensor:
    size = model.model.visual.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed))


def _check(features: np.ndarray, dim: int) -> None:
    assert features.shape == (2, dim) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(features).all()


@pytest.mark.parametrize("variant", FEATURE_VARIANTS)
def test_smoke_model_variants_are_unit_and_deterministic(smoke_model: Any, variant: str) -> None:
    images = _batch(smoke_model)
    first = extract_features(variant, images, smoke_model)
    _check(first, 64)
    np.testing.assert_array_equal(first, extract_features(variant, images, smoke_model.model))
    assert not np.allclose(first[0], first[1])  # different images, different features


def test_global_is_the_normalised_clip_embedding(smoke_model: Any) -> None:
    images = _batch(smoke_model)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(smoke_model.model.encode_image(images), dim=-1)
    np.testing.assert_allclose(extract_features("global", images, smoke_model), expected.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_vit_feature_map_is_ln_post_projected_patch_tokens(smoke_model: Any) -> None:
    """What MAC pools on a ViT: open_clip's own output tokens (ln_post, no CLS) times proj."""
    visual = smoke_model.model.visual
    images = _batch(smoke_model)
    fmap = feature_map(images, smoke_model)
    assert fmap.shape == (2, 64, 4, 4)  # 64 px / 16 px patches
    visual.output_tokens = True
    try:
        with torch.no_grad():
            pooled, tokens = visual(images)
    finally:
        visual.output_tokens = False
    expected = (tokens @ visual.proj).reshape(2, 4, 4, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(fmap, expected, rtol=1e-5, atol=1e-5)
    # and the CLS path through the same ln_post/proj is the CLIP embedding
    torch.testing.assert_close(pooled, smoke_model.model.encode_image(images).detach())


def test_vit_b32_variants(vit_b32: Any) -> None:
    images = _batch(vit_b32)
    assert feature_map(images, vit_b32).shape == (2, 512, 7, 7)
    for variant in FEATURE_VARIANTS:
        _check(extract_features(variant, images, vit_b32), 512)
    rmac = extract_features("rmac", images, vit_b32)
    np.testing.assert_array_equal(rmac, extract_features("rmac", images, vit_b32))
    assert not np.allclose(rmac, extract_features("mac", images, vit_b32))


def test_rn50_variants_pool_layer4_before_attnpool(rn50: Any) -> None:
    images = _batch(rn50)
    visual = rn50.model.visual
    fmap = feature_map(images, rn50)
    with torch.no_grad():
        x = visual.stem(images)
        expected = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))
    assert fmap.shape == (2, 2048, 7, 7)
    torch.testing.assert_close(fmap, expected)
    for variant, dim in (("global", 1024), ("mac", 2048), ("rmac", 2048), ("multipatch", 1024)):
        _check(extract_features(variant, images, rn50), dim)
    mac = extract_features("mac", images, rn50)
    np.testing.assert_array_equal(mac, extract_features("mac", images, rn50))


def test_unsupported_tower_and_variant() -> None:
    class Fake(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = torch.nn.Linear(3, 3)

    with pytest.raises(UnsupportedFeatureError, match="Linear") as raised:
        extract_features("mac", torch.zeros(1, 3, 4, 4), Fake())
    assert isinstance(raised.value, CliprobeError)
    with pytest.raises(ValueError, match="unknown feature variant"):
        extract_features("gem", torch.zeros(1, 3, 4, 4), Fake())


def test_feature_config_params() -> None:
    assert FeatureConfig().variant == "global" and FeatureConfig().params() == {}
    assert FeatureConfig(variant="rmac", rmac_scales=2).params() == {"scales": 2}
    assert FeatureConfig(variant="multipatch").params() == {"overlap": 0.4}
