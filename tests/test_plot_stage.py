"""The plot stage on synthetic aggregates: figure names, and the random-weights label."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from cliprobe.manipulations.sweeps import imagenet_c_sweep
from cliprobe.stages import aggregate, plot
from test_aggregate import write_tree

SEED001_FIGURES = ["box_smoke_sample.png", "change_smoke_sample.png",
                   "class_bars_smoke_sample.png", "heatmap_smoke.png", "hist_smoke_sample.png"]


@pytest.fixture
def titles(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """File name -> every title text of the figure saved under it."""
    seen: dict[str, str] = {}
    original = plot.save

    def recording_save(figure: plt.Figure, path: Path) -> None:
        texts = [figure.get_suptitle(), *(axes.get_title() for axes in figure.axes)]
        seen[path.name] = "\n".join(texts)
        original(figure, path)

    monkeypatch.setattr(plot, "save", recording_save)
    return seen


def _figures(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "plots" / "figures").glob("*.png"))


def test_without_corruption_cells_only_seed001_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, [])
    aggregate.main([])
    plot.main([])
    assert _figures(tmp_path) == SEED001_FIGURES


def test_corruption_figures_one_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, titles: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cells = imagenet_c_sweep(corruptions=("gaussian_noise", "fog", "saturate"))
    write_tree(tmp_path, ["manipulation=[grey]"], extra=cells)
    aggregate.main([])
    plot.main([])
    assert _figures(tmp_path) == sorted([*SEED001_FIGURES, "corruption_heatmap_smoke_sample.png",
                                         "severity_smoke_sample.png"])
    for name in ("severity_smoke_sample.png", "corruption_heatmap_smoke_sample.png"):
        assert "RANDOM WEIGHTS: not a finding" in titles[name]


def test_corruption_figures_two_models_and_constructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, titles: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cells = {**imagenet_c_sweep(corruptions=("fog", "snow")),
             "fog_full": {"function": "imagenet_c_fog", "severity": 3,
                          "construction": "full_resolution"}}
    write_tree(tmp_path, ["model=[smoke,RN50]", "manipulation=[grey]"], extra=cells)
    aggregate.main([])
    plot.main([])
    expected = [f"{kind}_{model}_sample{suffix}.png"
                for kind in ("severity", "corruption_heatmap") for model in ("smoke", "RN50")
                for suffix in ("", "_full_resolution")]
    expected += ["severity_models_sample.png", "severity_models_sample_full_resolution.png"]
    expected += [f"{kind}_{model}_sample.png" for kind in ("box", "change", "class_bars", "hist")
                 for model in ("smoke", "RN50")]
    expected += ["heatmap_smoke.png", "heatmap_RN50.png"]
    assert _figures(tmp_path) == sorted(expected)
    assert "RANDOM WEIGHTS" in titles["severity_smoke_sample.png"]
    assert "RANDOM WEIGHTS" not in titles["severity_RN50_sample.png"]
    assert "RANDOM WEIGHTS" in titles["severity_models_sample.png"]  # one of them is random
