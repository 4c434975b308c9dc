"""Saliency maps: they peak where a synthetic model's evidence is, on ViT and ResNet towers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cliprobe.saliency.geometry import box_mask, fill_value, model_view
from cliprobe.saliency.maps import (
    downsample,
    gradcam_maps,
    occlusion_maps,
    window_positions,
    zero_shot_head,
)
from cliprobe.saliency.mass import mass_inside
from cliprobe.saliency.towers import GradcamLayer, UnsupportedSaliencyError, gradcam_layer

SIDE = 32
SQUARE = (20, 4, 28, 12)  # left, top, right, bottom: where the test puts the signal


class RedDetector(torch.nn.Module):
    """A tiny visual tower: feature 0 fires on red pixels, feature 1 is a constant.

    Grad-CAM reads ``detect``'s output (after the ReLU), which the tower mean-pools: like a
    real tower's last feature map, the layer the embedding is pooled from.
    """

    def __init__(self) -> None:
        super().__init__()
        conv = torch.nn.Conv2d(3, 2, kernel_size=1)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0, 0] = 4.0   # + red
            conv.weight[0, 1] = -4.0  # - green
            conv.bias.copy_(torch.tensor([0.0, 0.5]))
        self.detect = torch.nn.Sequential(conv, torch.nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detect(images).mean(dim=(2, 3))


def _signal_image() -> torch.Tensor:
    image = torch.zeros(1, 3, SIDE, SIDE)  # a grey image in "normalised" units
    left, top, right, bottom = SQUARE
    image[0, 0, top:bottom, left:right] = 1.0  # red square
    return image


def _inside(index: tuple[int, int]) -> bool:
    left, top, right, bottom = SQUARE
    return top <= index[0] < bottom and left <= index[1] < right


def _square_mask() -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), np.float32)
    left, top, right, bottom = SQUARE
    mask[top:bottom, left:right] = 1
    return mask


def test_both_methods_peak_on_the_signal_of_a_synthetic_model() -> None:
    tower = RedDetector()
    # class 0 = "red", 1 = "other"; logit scale 10 keeps both probabilities off 0 and 1
    head = zero_shot_head(tower, np.eye(2, dtype=np.float32), scale=10.0)
    images = _signal_image()
    cam = gradcam_maps(head, GradcamLayer(tower.detect, None, "detect"), images, [0])[0]
    occlusion = occlusion_maps(head, images, [[0, 1]], window=8, stride=4,
                               fill=torch.zeros(3))[0]
    for name, saliency in (("gradcam", cam), ("occlusion", occlusion[0])):
        peak = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
        assert _inside(peak), f"{name} peaks at {peak}, outside the red square"
        # the square is 1/16 of the image; a window straddling it spreads some mass around it
        assert mass_inside(saliency, _square_mask()) > 4 / 16, name
    # hiding the red square lowers p(red) and raises p(other): opposite signs there
    left, top, right, bottom = SQUARE
    assert occlusion[0][top:bottom, left:right].mean() > 0
    assert occlusion[1][top:bottom, left:right].mean() < 0


def test_occlusion_equals_captums_occlusion(smoke_model) -> None:
    captum = pytest.importorskip("captum.attr")
    weights = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    weights /= np.linalg.norm(weights, axis=0)
    head = zero_shot_head(smoke_model.model.visual, weights)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    fill = torch.tensor([0.1, -0.2, 0.3])
    ours = occlusion_maps(head, images, [[1, 3], [1, 3]], window=16, stride=8, fill=fill,
                          batch_size=7)

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        return torch.softmax(head(batch), dim=-1)

    reference = captum.Occlusion(probabilities)
    for k, target in enumerate((1, 3)):
        with torch.no_grad():
            theirs = reference.attribute(images, sliding_window_shapes=(3, 16, 16),
                                         strides=(3, 8, 8), target=target,
                                         baselines=fill.reshape(1, 3, 1, 1),
                                         perturbations_per_eval=8)
        np.testing.assert_allclose(ours[:, k], theirs[:, 0].numpy(), atol=2e-6)


def _manual_gradcam(head, module, activations_of, images, target: int) -> np.ndarray:
    """Grad-CAM from first principles: hooks, mean gradient per channel, weighted sum."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    captured = {}
    handle = module.register_forward_hook(lambda _m, _i, out: captured.update(out=out))
    output = head(images)
    handle.remove()
    activations = captured["out"]
    gradients = torch.autograd.grad(output[0, target], activations)[0]
    acts, grads = activations_of(activations.detach()), activations_of(gradients)
    cam = (grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1)
    cam = np.maximum(cam.numpy(), 0)
    return scale_cam_image(cam, (images.shape[-1], images.shape[-2]))[0]


def test_vit_tokens_are_laid_out_on_the_patch_grid(smoke_model) -> None:
    visual = smoke_model.model.visual  # 64 px, patch 16: a 4 x 4 grid plus the class token
    weights = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    weights /= np.linalg.norm(weights, axis=0)
    head = zero_shot_head(visual, weights)
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    layer = gradcam_layer(visual, 64)
    assert layer.name == "transformer.resblocks[-1].ln_1"

    def grid_by_index(tokens: torch.Tensor) -> torch.Tensor:  # token 1 + 4 * row + col
        return torch.stack([torch.stack([tokens[:, 1 + 4 * row + col] for col in range(4)],
                                        dim=-1) for row in range(4)], dim=-2)

    ours = gradcam_maps(head, layer, images, [2])[0]
    expected = _manual_gradcam(head, layer.module, grid_by_index, images, 2)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert ours.shape == (64, 64) and ours.max() == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory: pytest.TempPathFactory):
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    (folder / "cliprobe-test-rn.json").write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
    }))
    open_clip.add_model_config(Path(folder))
    torch.manual_seed(0)
    return open_clip.create_model("cliprobe-test-rn").eval()


def test_resnet_tower_reads_layer4(tiny_resnet) -> None:
    visual = tiny_resnet.visual
    weights = np.random.default_rng(2).standard_normal((32, 3)).astype(np.float32)
    weights /= np.linalg.norm(weights, axis=0)
    head = zero_shot_head(visual, weights)
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    layer = gradcam_layer(visual, 64)
    assert layer.name == "layer4[-1]" and layer.module is visual.layer4[-1]
    ours = gradcam_maps(head, layer, images, [0])[0]
    expected = _manual_gradcam(head, layer.module, lambda a: a, images, 0)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_other_towers_name_the_way_out() -> None:
    with pytest.raises(UnsupportedSaliencyError, match=r"saliency\.methods"):
        gradcam_layer(torch.nn.Linear(2, 2), 64)


def test_window_positions_cover_the_edge() -> None:
    assert window_positions(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    assert window_positions(10, 4, 4) == [0, 4, 6]
    assert window_positions(8, 20, 4) == [0]


def test_a_box_lands_on_the_input_pixels_the_model_sees(smoke_model) -> None:
    preprocess = smoke_model.preprocess  # resize the short side to 64, centre-crop 64
    # 128 x 64: no scaling, a 32 px crop on each side
    mask = box_mask(preprocess, (128, 64), (40, 10, 60, 30))
    expected = np.zeros((64, 64), np.float32)
    expected[10:30, 8:28] = 1
    np.testing.assert_allclose(mask, expected, atol=1e-3)
    # 256 x 128 -> scaled by 1/2: the box's area shrinks by 4 and its centre moves with it
    mask = box_mask(preprocess, (256, 128), (80, 20, 120, 60))
    assert mask.sum() == pytest.approx(20 * 20, rel=0.05)
    rows, cols = np.nonzero(mask > 0.5)
    assert rows.mean() == pytest.approx(19.5, abs=0.6) and cols.mean() == pytest.approx(17.5,
                                                                                       abs=0.6)


def test_model_view_and_fill_undo_the_normalisation(smoke_model) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    view = model_view(smoke_model.preprocess, Image.fromarray(pixels))
    assert np.abs(view.astype(int) - pixels[:, 32:96].astype(int)).max() <= 1
    grey = fill_value(smoke_model.preprocess, "#808080")
    expected = smoke_model.preprocess(Image.new("RGB", (64, 64), (128, 128, 128)))[:, 0, 0]
    torch.testing.assert_close(grey, expected)


def test_mass_inside_and_downsample() -> None:
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, :2, :2] = 1.0
    maps[0, 3, 3] = -5.0  # negative evidence does not count
    mask = np.zeros((4, 4), np.float32)
    mask[:2, :] = 1
    shares = mass_inside(maps, mask)
    assert shares[0] == pytest.approx(1.0) and np.isnan(shares[1])
    small = downsample(maps, 2)
    assert small.shape == (2, 2, 2) and small[0, 0, 0] == pytest.approx(1.0)
