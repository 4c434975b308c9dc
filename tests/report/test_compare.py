"""`cliprobe report --compare`: the paired test across runs where the images are the same, the
interval fallback elsewhere, reading a run's files at a git revision through DVC, and the page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cliprobe.report import compare as cmp
from cliprobe.report.comparison import render_comparison

KEYS = ["model", "dataset", "manipulation", "metric"]


def _cells(values: dict[tuple[str, str], tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": "M", "dataset": "d", "manipulation": x, "metric": metric,
                          "value": v, "ci_low": lo, "ci_high": hi, "n_images": 40,
                          "n_skipped": 0, "random_weights": False}
                         for (x, metric), (v, lo, hi) in values.items()])


class FakeRun(cmp.Run):
    """A run whose per-image tables and manifest are in memory (no DVC)."""

    def __init__(self, label: str, cells: pd.DataFrame, per_image: dict[str, pd.DataFrame],
                 manifest: pd.DataFrame) -> None:
        super().__init__(label, label, cells)
        self.tables, self.rows = per_image, manifest

    def per_image(self, model: str, dataset: str, manipulation: str) -> pd.DataFrame | None:
        return self.tables.get(manipulation)

    def manifest(self, dataset: str) -> pd.DataFrame | None:
        return self.rows


def _per_image(correct: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(len(correct))],
                         "label": ["a", "b"] * (len(correct) // 2),
                         "zeroshot_correct": correct.astype(float)})


def test_same_images_need_equal_ids_labels_and_hashes() -> None:
    base = pd.DataFrame({"image_id": ["a", "b"], "label": ["x", "y"], "sha256": ["1", "2"]})
    assert cmp.same_images(base, base.copy())
    assert cmp.same_images(base, base.iloc[:1])  # a subset: paired on the common images
    assert not cmp.same_images(base, base.assign(sha256=["1", "3"]))  # b's pixels changed
    assert not cmp.same_images(base, base.assign(label=["x", "x"]))
    assert not cmp.same_images(base, base.assign(image_id=["c", "d"]))
    assert not cmp.same_images(base, None)


def test_a_cell_on_the_same_images_is_tested_pairwise_others_by_intervals() -> None:
    correct_a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1] * 4)
    correct_b = correct_a.copy()
    correct_b[:16] = 0  # 16 of 40 images flip: a clear paired difference of −0.4
    values_a = {("blurred", "zeroshot_acc1"): (1.0, 1.0, 1.0),
                ("blurred", "zeroshot_mean_per_class_recall"): (0.9, 0.8, 1.0)}
    values_b = {("blurred", "zeroshot_acc1"): (0.6, 0.45, 0.75),
                ("blurred", "zeroshot_mean_per_class_recall"): (0.85, 0.7, 0.95)}
    manifest = pd.DataFrame({"image_id": [f"i{k}" for k in range(40)],
                             "label": ["a", "b"] * 20})
    main = FakeRun("main", _cells(values_a), {"blurred": _per_image(correct_a)}, manifest)
    branch = FakeRun("branch", _cells(values_b), {"blurred": _per_image(correct_b)}, manifest)
    paired = cmp.paired_differences(main, branch, seed=0, resamples=500, confidence=0.95)
    [row] = paired.to_dict("records")  # mean per-class recall has no per-image values
    assert row["metric"] == "zeroshot_acc1" and row["difference"] == pytest.approx(-0.4)
    assert row["significant"] and row["mcnemar_p"] < 0.001 and row["n"] == 40
    table = cmp.side_by_side({"main": main.cells, "branch": branch.cells}, {"branch": paired})
    by_metric = table.set_index("metric")
    assert by_metric.loc["zeroshot_acc1", "test (branch)"] == "paired"
    assert bool(by_metric.loc["zeroshot_acc1", "flag (branch)"])
    # the other metric: overlapping intervals, no paired test -> not flagged
    assert by_metric.loc["zeroshot_mean_per_class_recall", "test (branch)"] == "intervals"
    assert not bool(by_metric.loc["zeroshot_mean_per_class_recall", "flag (branch)"])
    # other images (a label changed in the manifest): no paired test at all
    other = FakeRun("other", branch.cells, branch.tables, manifest.assign(label="a"))
    assert cmp.paired_differences(main, other, 0, 500, 0.95).empty

    page = render_comparison(table, ["main", "branch"])
    assert "What changed against main" in page and "Δ branch − main" in page
    assert "zero-shot top-1" in page and "−40.0 pt [" in page
    assert "paired test on the same images: significant" in page
    assert '<td data-col="blurred\u001e2" data-value="-0.4" class="worse"' in page
    assert "1 of 2 metric values differ (1 tested pairwise on the same images, 1 by their " \
           "intervals)" in page


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project,
                   check=True, capture_output=True)


def test_reads_a_tracked_parquet_inside_a_directory_output_at_a_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dvc.api at a revision, from the local cache: the committed per_image table, not the
    workspace's (this is how the comparison pairs runs of two branches)."""
    dvc = str(Path(sys.executable).parent / "dvc")
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    _git(tmp_path, "init", "-q")
    subprocess.run([dvc, "init", "-q"], check=True, env=env)
    cell = Path("data/cells/M/d/x")
    cell.mkdir(parents=True)
    pd.DataFrame({"image_id": ["a"], "v": [1.0]}).to_parquet(cell / "per_image.parquet")
    subprocess.run([dvc, "add", "-q", "data/cells"], check=True, env=env)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "run 1")
    pd.DataFrame({"image_id": ["a"], "v": [2.0]}).to_parquet(cell / "per_image.parquet")
    committed = cmp.read_parquet(str(cell / "per_image.parquet"), "HEAD")
    assert committed is not None and committed["v"].tolist() == [1.0]
    assert cmp.read_parquet(str(cell / "per_image.parquet"), None)["v"].tolist() == [2.0]
    assert cmp.read_parquet("data/cells/M/d/y/per_image.parquet", "HEAD") is None
