"""The aggregate stage on synthetic cells: paired comparisons, the table's marks, ImageNet-C CE.

Cells are written the way the score stage writes them (metrics.json with the same keys and
per_image.parquet with the same columns) into tmp_path, with per-image outcomes designed so
every expected number can be computed by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cliprobe import paths
from cliprobe.config.cell_shards import cell_shards
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.config.loading import validate_params
from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, IMAGENET_C_CORRUPTIONS
from cliprobe.metrics import corruption_summary as cs
from cliprobe.metrics import retrieval as rm
from cliprobe.metrics import summary as sm
from cliprobe.metrics.bootstrap import bootstrap_mean
from cliprobe.metrics.corruption import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS
from cliprobe.seeding import derive_seed
from cliprobe.stages import aggregate

N_IMAGES = 20
CLASSES = 4
RESAMPLES = 200
CLEAN_WRONG = 2  # images whose first same-class neighbour is not at rank 0 in `original`
#: the same misses in imagenet_c_clean (Resize 256 + CenterCrop 224, no corruption): CE's clean
#: error must come from this cell, not from `original` (the model's own preprocessing)
CONSTRUCTED_CLEAN_WRONG = 5


def wrong_images(corruption: str, severity: int) -> int:
    """Images of a corruption cell retrieved with another class first (error × 20)."""
    return 2 + severity + ALL_CORRUPTIONS.index(corruption) % 5


def per_image_frame(wrong: int, seed001: float, drift: float, own_misses: int) -> pd.DataFrame:
    """A per_image.parquet table: ``wrong`` class misses at rank 1, ``own_misses`` own misses."""
    index = np.arange(N_IMAGES)
    return pd.DataFrame({
        "image_id": [f"img{i:02d}" for i in index],
        "label": [f"class{i % CLASSES}" for i in index],
        "seed001_accuracy": np.full(N_IMAGES, seed001),
        "own_rank": np.where(index < own_misses, 1, 0).astype(np.int64),
        "class_rank": np.where(index >= N_IMAGES - wrong, 3, 0).astype(np.int64),
        "cosine_drift": np.full(N_IMAGES, drift),
        # zero-shot misses the same images retrieval does, so CE can be worked out by hand
        "zeroshot_correct": np.where(index >= N_IMAGES - wrong, 0.0, 1.0),
    })


def write_cell(model: str, dataset: str, manipulation: str, function: str | None,
               cell_params: dict[str, Any] | None, frame: pd.DataFrame, seed: int,
               recall_k: list[int], random_weights: bool = True) -> None:
    """metrics.json and per_image.parquet of one cell, as stages/score.py writes them."""
    cell_key = f"{model}/{dataset}/{manipulation}"

    def estimate(name: str, values: np.ndarray, resampled: str = "images") -> dict[str, Any]:
        seed_value = derive_seed(seed, cell_key, name) % (2**32)
        return bootstrap_mean(values, RESAMPLES, 0.95, seed_value, resampled).as_dict()

    labels = frame["label"].to_numpy()
    accuracy = frame["seed001_accuracy"].to_numpy()
    metrics = {
        "seed001_accuracy": estimate("seed001_accuracy",
                                     rm.class_means(accuracy, labels).to_numpy(), "classes"),
        "cosine_drift": estimate("cosine_drift", frame["cosine_drift"].to_numpy()),
        "zeroshot_acc1": estimate("zeroshot_acc1", frame["zeroshot_correct"].to_numpy()),
    }
    for k in recall_k:
        metrics[f"recall_own_at_{k}"] = estimate(
            f"recall_own_at_{k}", rm.recall_at_k(frame["own_rank"].to_numpy(), k))
        metrics[f"recall_class_at_{k}"] = estimate(
            f"recall_class_at_{k}", rm.recall_at_k(frame["class_rank"].to_numpy(), k))
    report = {
        "cell": {"model": model, "dataset": dataset, "manipulation": manipulation,
                 "function": function, "params": cell_params},
        "provenance": {"model": model, "random_weights": random_weights, "seed": seed,
                       "weights": "RANDOM WEIGHTS" if random_weights else "pretrained",
                       "versions": {}},
        "n_images": len(frame),
        "n_skipped": 0,
        "skipped": [],
        "retrieval": {"index": "clean gallery", "gallery_size": len(frame)},
        "metrics": metrics,
        "per_class_seed001_accuracy": rm.class_means(accuracy, labels).to_dict(),
    }
    out = paths.cell_dir(model, dataset, manipulation)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "per_image.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True))


def cell_frame(entry: dict[str, Any] | None) -> pd.DataFrame:
    """The designed per-image outcomes of a cell (``None`` = original)."""
    if entry is None:
        return per_image_frame(CLEAN_WRONG, 1.0, 1.0, 0)
    function = entry["function"]
    if function == "imagenet_c_clean":
        return per_image_frame(CONSTRUCTED_CLEAN_WRONG, 1.0, 1.0, 0)
    if function.startswith("imagenet_c_"):
        corruption = entry.get("corruption") or function.removeprefix("imagenet_c_")
        severity = entry["severity"]
        wrong = wrong_images(corruption, severity)
        return per_image_frame(wrong, 1.0 - 0.15 * severity, 1.0 - 0.01 * severity, wrong)
    return per_image_frame(CLEAN_WRONG, 1.0, 1.0, 0)  # identical to original


def write_tree(root: Path, overrides: list[str],
               extra: dict[str, dict[str, Any]] | None = None,
               frames: Callable[[dict[str, Any] | None], pd.DataFrame] = cell_frame,
               ) -> dict[str, Any]:
    """params.yaml composed from conf/ plus every cell of its grid, under ``root``."""
    conf = Path(__file__).resolve().parents[1] / "conf"
    raw = compose_params(conf, ["model=smoke", f"stats.bootstrap_resamples={RESAMPLES}",
                                *overrides])
    if extra:
        raw["manipulation"] = {**extra, **raw["manipulation"]}
        raw["cell_shards"] = cell_shards(raw["manipulation"])  # as composition would
    params = validate_params(raw)
    (root / "params.yaml").write_text(to_yaml(raw))
    recall_k = params.retrieval.recall_k
    for model, config in params.model.items():
        for dataset in params.dataset:
            write_cell(model, dataset, paths.CLEAN, "identity", {}, frames(None), params.seed,
                       recall_k, config.is_random)
            for name, entry in raw["manipulation"].items():
                cell_params = {k: v for k, v in entry.items() if k != "function"}
                write_cell(model, dataset, name, entry["function"], cell_params, frames(entry),
                           params.seed, recall_k, config.is_random)
    return raw


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 95-cell ImageNet-C sweep plus seed 001's blur, aggregated once."""
    root = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        write_tree(root, ["+experiment=imagenet_c_sweep"],
                   extra={"blurred": {"function": "gaussian_blur", "sigma": 3.0}})
        aggregate.main([])
    return root


def test_comparisons_of_an_unchanged_cell(sweep: Path) -> None:
    table = pd.read_csv(sweep / "metrics" / "comparisons.csv")
    assert list(table.columns) == sm.COMPARISON_COLUMNS
    assert len(table) == 97 * 9  # blurred, imagenet_c_clean + 95 corruption cells, 9 metrics
    blurred = table[table["manipulation"] == "blurred"].set_index("metric")
    assert (blurred["difference"] == 0).all() and (blurred["ci_low"] == 0).all()
    assert (blurred["ci_high"] == 0).all() and (blurred["p_value"] == 1).all()
    assert not blurred["significant"].any()
    assert blurred.loc["recall_own_at_1", "mcnemar_p"] == 1.0
    assert math.isnan(blurred.loc["cosine_drift", "mcnemar_p"])
    assert blurred.loc["seed001_accuracy", "resampled"] == "classes"
    assert blurred.loc["seed001_accuracy", "n"] == CLASSES
    assert blurred.loc["recall_own_at_1", "n"] == N_IMAGES


def test_comparisons_of_a_corruption_cell(sweep: Path) -> None:
    table = pd.read_csv(sweep / "metrics" / "comparisons.csv")
    fog = table[table["manipulation"] == "fog_s5"].set_index("metric")
    wrong = wrong_images("fog", 5)
    # seed 001: 1.0 -> 0.25 on every image of every class: a constant shift
    row = fog.loc["seed001_accuracy"]
    assert row["difference"] == pytest.approx(-0.75)
    assert row["ci_low"] == pytest.approx(-0.75) and row["ci_high"] == pytest.approx(-0.75)
    assert row["p_value"] == pytest.approx(2 / (RESAMPLES + 1)) and row["significant"]
    assert fog.loc["cosine_drift", "difference"] == pytest.approx(-0.05)
    # recall_own_at_1: `wrong` images lost, none gained; McNemar exact p = 2 / 2**wrong
    own = fog.loc["recall_own_at_1"]
    assert own["difference"] == pytest.approx(-wrong / N_IMAGES)
    assert own["mcnemar_p"] == pytest.approx(2 * 0.5**wrong)
    assert own["ci_low"] < own["difference"] < own["ci_high"] < 0 and own["significant"]
    # recall_class_at_1: clean misses the last 2 images, fog_s5 the last `wrong`
    assert fog.loc["recall_class_at_1", "difference"] == pytest.approx(
        -(wrong - CLEAN_WRONG) / N_IMAGES)
    assert fog.loc["recall_class_at_5", "difference"] == 0.0  # rank 3 is within 5


def test_seed001_table_marks_significant_differences(sweep: Path) -> None:
    lines = (sweep / "metrics" / "seed001_table.csv").read_text().splitlines()
    names = [f"{c}_s{s}" for c in ALL_CORRUPTIONS for s in range(1, 6)]
    assert lines[0] == ",".join(["model", "dataset", "original", "blurred", "imagenet_c_clean",
                                 *names])
    table = pd.read_csv(sweep / "metrics" / "seed001_table.csv")
    row = table.iloc[0]
    assert row["original"] == "1.000 [1.000, 1.000]"
    assert row["blurred"] == "1.000 [1.000, 1.000]"  # no difference, no mark
    assert row["fog_s5"] == "0.250 [0.250, 0.250]*"
    markdown = (sweep / "metrics" / "seed001_table.md").read_text()
    assert "| smoke | sample | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |" in markdown
    assert "the query's own clean image excluded (leave-one-out)" in markdown
    assert "`*`: differs from `original`" in markdown
    assert "RANDOM WEIGHTS: not a finding" in markdown


def test_corruptions_table(sweep: Path) -> None:
    table = pd.read_csv(sweep / "metrics" / "corruptions.csv")
    assert list(table.columns) == cs.CORRUPTION_COLUMNS
    assert len(table) == 95 * 10  # 9 metrics + the zero-shot error
    assert list(dict.fromkeys(table["corruption"])) == list(ALL_CORRUPTIONS)
    error = table[table["metric"] == sm.ERROR_METRIC].set_index(
        ["corruption", "severity"])
    for corruption in ("gaussian_noise", "fog", "saturate"):
        for severity in (1, 3, 5):
            expected = wrong_images(corruption, severity) / N_IMAGES
            assert error.loc[(corruption, severity), "value"] == pytest.approx(expected)
    recall = table[table["metric"] == "zeroshot_acc1"].set_index(["corruption", "severity"])
    row, source = error.loc[("fog", 2)], recall.loc[("fog", 2)]
    assert row["ci_low"] == pytest.approx(1 - source["ci_high"])
    assert row["ci_high"] == pytest.approx(1 - source["ci_low"])
    assert set(table["construction"]) == {"imagenet_c"} and table["random_weights"].all()


def test_corruption_summary_ce_and_mce(sweep: Path) -> None:
    summary = json.loads((sweep / "metrics" / "summary.json").read_text())
    assert set(summary["smoke"]["sample"]) == {"original", "blurred", "imagenet_c_clean", *(
        f"{c}_s{s}" for c in ALL_CORRUPTIONS for s in range(1, 6))}
    report = summary["corruption_summary"]["smoke"]["sample"]["imagenet_c"]
    assert report["error_metric"] == "zeroshot_error = 1 - zeroshot_acc1"
    assert report["clean_cell"] == "imagenet_c_clean"  # the same construction, not `original`
    clean = CONSTRUCTED_CLEAN_WRONG / N_IMAGES
    assert report["clean_error"]["value"] == pytest.approx(clean)
    ce, relative = {}, {}
    for corruption in IMAGENET_C_CORRUPTIONS:
        errors = [wrong_images(corruption, s) / N_IMAGES for s in range(1, 6)]
        ce[corruption] = sum(errors) / (5 * ALEXNET_ERRORS[corruption])
        relative[corruption] = sum(e - clean for e in errors) / (
            5 * (ALEXNET_ERRORS[corruption] - ALEXNET_CLEAN_ERROR))
        entry = report["ce"][corruption]
        assert entry["value"] == pytest.approx(ce[corruption])
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
        assert report["relative_ce"][corruption]["value"] == pytest.approx(relative[corruption])
    assert set(report["ce"]) == set(IMAGENET_C_CORRUPTIONS)  # the extras have no CE
    assert report["complete"] is True and report["corruptions_present"] == 15
    assert report["mce"]["value"] == pytest.approx(sum(ce.values()) / 15)
    assert report["relative_mce"]["value"] == pytest.approx(sum(relative.values()) / 15)
    assert report["mce"]["ci_low"] < report["mce"]["value"] < report["mce"]["ci_high"]
    assert report["n_images"] == N_IMAGES and report["resamples"] == RESAMPLES


def test_severity_plot_data(sweep: Path) -> None:
    table = pd.read_csv(sweep / "plots" / "severity.csv")
    assert len(table) == 19 * 6  # severities 0 (clean) to 5 for each corruption
    fog = table[table["corruption"] == "fog"].set_index("severity")
    assert fog.loc[0, "manipulation"] == "imagenet_c_clean"  # the same construction
    assert fog.loc[0, "zeroshot_error"] == pytest.approx(CONSTRUCTED_CLEAN_WRONG / N_IMAGES)
    assert fog.loc[4, "zeroshot_error"] == pytest.approx(wrong_images("fog", 4) / N_IMAGES)
    assert fog.loc[4, "seed001_accuracy"] == pytest.approx(0.4)
    assert {"zeroshot_error_ci_low", "zeroshot_error_ci_high", "panel"} <= set(table.columns)
    assert set(table["panel"]) == {"smoke/sample/imagenet_c"}


def test_without_corruption_cells_outputs_keep_their_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, [])
    aggregate.main([])
    table = (tmp_path / "metrics" / "seed001_table.csv").read_text().splitlines()
    assert table[0] == "model,dataset,original,blurred,cropped,grey"
    assert "*" not in "\n".join(table)
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    assert set(summary) == {"smoke"}  # no corruption_summary
    assert pd.read_csv(tmp_path / "metrics" / "corruptions.csv").empty
    assert pd.read_csv(tmp_path / "plots" / "severity.csv").empty
    comparisons = pd.read_csv(tmp_path / "metrics" / "comparisons.csv")
    assert len(comparisons) == 3 * 9 and not comparisons["significant"].any()


def test_partial_sweep_and_two_constructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few corruption cells: CE over what is there, mCE undefined (null), per construction."""
    monkeypatch.chdir(tmp_path)
    extra = {
        "fog_s2": {"function": "imagenet_c_fog", "severity": 2, "construction": "imagenet_c"},
        "fog_s4": {"function": "imagenet_c_fog", "severity": 4, "construction": "imagenet_c"},
        "fog_full": {"function": "imagenet_c_fog", "severity": 2,
                     "construction": "full_resolution"},
        "spatter_s1": {"function": "imagenet_c_spatter", "severity": 1},
        "fog_again": {"function": "imagenet_c_fog", "severity": 4},  # repeats fog_s4
    }
    write_tree(tmp_path, ["manipulation=[grey]"], extra=extra)
    aggregate.main([])
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    groups = summary["corruption_summary"]["smoke"]["sample"]
    assert set(groups) == {"imagenet_c", "full_resolution"}
    report = groups["imagenet_c"]
    fog = [wrong_images("fog", s) / N_IMAGES for s in (2, 4)]
    assert report["ce"]["fog"]["value"] == pytest.approx(sum(fog) / (2 * ALEXNET_ERRORS["fog"]))
    assert report["mce"] == {"value": None, "ci_low": None, "ci_high": None}
    assert report["mce_over_present"]["value"] == pytest.approx(report["ce"]["fog"]["value"])
    assert report["complete"] is False and report["corruptions_present"] == 1
    assert set(report["ce"]) == {"fog"}  # spatter is an extra: no CE
    assert report["ignored_duplicates"] == ["fog_again"]
    assert "ignored_duplicates" not in groups["full_resolution"]
    corruptions = pd.read_csv(tmp_path / "metrics" / "corruptions.csv")
    assert set(corruptions["manipulation"]) == set(extra)


def _caption_cell(root: Path, manipulation: str, caption_ranks: list[list[int]],
                  best: list[int]) -> None:
    """A caption dataset's cell: images without class, captions' ranks per image."""
    n = len(best)
    frame = pd.DataFrame({
        "image_id": [f"img{i}" for i in range(n)], "label": [""] * n,
        "seed001_accuracy": np.linspace(0.2, 0.7, n) if manipulation == "original"
        else np.linspace(0.1, 0.5, n),
        "own_rank": np.zeros(n, dtype=np.int64), "class_rank": np.full(n, -1),
        "cosine_drift": np.ones(n), "n_captions": [len(r) for r in caption_ranks],
        "caption_ranks": caption_ranks, "best_caption_rank": best})
    names = ["seed001_accuracy", "text_to_image_recall_at_1", "image_to_text_recall_at_1"]
    metrics = {name: {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0} for name in names}
    report = {"cell": {"model": "smoke", "dataset": "captions_folder",
                       "manipulation": manipulation, "function": None, "params": {}},
              "provenance": {"model": "smoke", "random_weights": True, "seed": 0,
                             "versions": {}},
              "n_images": n, "n_skipped": 0, "skipped": [], "metrics": metrics,
              "per_class_seed001_accuracy": {}}
    out = root / paths.cell_dir("smoke", "captions_folder", manipulation)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "per_image.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps(report))


def test_caption_recalls_are_paired_by_image_with_captions_kept_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conf = Path(__file__).resolve().parents[1] / "conf"
    raw = compose_params(conf, ["model=smoke", "dataset=[captions_folder]",
                                "manipulation=[blurred]", f"stats.bootstrap_resamples={RESAMPLES}"])
    (tmp_path / "params.yaml").write_text(to_yaml(raw))
    counts = [1, 2, 3, 1, 2, 3]  # 12 captions over 6 images
    _caption_cell(tmp_path, "original", [[0] * c for c in counts], [0] * 6)
    # blurred: 9 of 12 captions still find their image first; 4 of 6 images their caption
    _caption_cell(tmp_path, "blurred", [[5], [0, 4], [0, 0, 7], [0], [0, 0], [0, 0, 0]],
                  [3, 0, 0, 0, 2, 0])
    aggregate.main([])
    rows = pd.read_csv(tmp_path / "metrics" / "comparisons.csv").set_index("metric")
    t2i = rows.loc["text_to_image_recall_at_1"]
    # the caption mean's difference (9/12 - 12/12), not the image mean's (0.694 - 1)
    assert t2i["difference"] == pytest.approx(-0.25)
    assert t2i["resampled"] == "images" and t2i["n"] == 6 and math.isnan(t2i["mcnemar_p"])
    assert t2i["ci_low"] <= -0.25 <= t2i["ci_high"]
    i2t = rows.loc["image_to_text_recall_at_1"]
    assert i2t["difference"] == pytest.approx(-2 / 6)
    assert i2t["mcnemar_p"] == pytest.approx(0.5)  # 2 lost, 0 gained: exact binomial
    seed001 = rows.loc["seed001_accuracy"]
    # no classes: images are resampled (a class bootstrap of one class "" would be constant)
    assert seed001["resampled"] == "images" and seed001["ci_low"] < seed001["ci_high"]
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    assert "text_to_image_recall_at_1" in summary["smoke"]["captions_folder"]["blurred"]


def test_summary_puts_each_interval_beside_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `dvc metrics diff` shows: every value, then its interval on the next row."""
    from cliprobe.devtools import run

    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, ["manipulation=[blurred]"])
    aggregate.main([])
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    cells = pd.read_csv(tmp_path / "metrics" / "cells.csv")
    blurred = summary["smoke"]["sample"]["blurred"]
    for row in cells[cells["manipulation"] == "blurred"].itertuples():
        assert blurred[row.metric] == pytest.approx(row.value)
        assert blurred[f"{row.metric}-ci"] == f"[{row.ci_low:.4f}, {row.ci_high:.4f}]"
    assert blurred["n_images"] == N_IMAGES and blurred["n_not_applicable"] == 0

    # the same through DVC, between two revisions of the summary
    (tmp_path / "dvc.yaml").write_text("metrics:\n  - metrics/summary.json\n")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"],
                    ["git", "add", "dvc.yaml", "metrics/summary.json", ".dvc"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"]):
        run(command, tmp_path)
    changed = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    changed["smoke"]["sample"]["blurred"]["recall_own_at_1"] = 0.5
    changed["smoke"]["sample"]["blurred"]["recall_own_at_1-ci"] = "[0.3000, 0.7000]"
    (tmp_path / "metrics" / "summary.json").write_text(json.dumps(changed))
    shown = run(["dvc", "metrics", "diff", "HEAD", "--md"], tmp_path).splitlines()
    rows = [[cell.strip() for cell in line.split("|")[2:5]] for line in shown
            if "summary.json" in line]
    before = blurred["recall_own_at_1-ci"]
    assert rows == [["smoke.sample.blurred.recall_own_at_1", str(blurred["recall_own_at_1"]),
                     "0.5"],
                    ["smoke.sample.blurred.recall_own_at_1-ci", before, "[0.3000, 0.7000]"]]


def _exact_cells(entry: dict[str, Any] | None) -> pd.DataFrame:
    """Per-image outcomes for the hand-computed mCE case (errors as 20ths, see below)."""
    if entry is None:                                   # original: 2/20 = 0.10 wrong
        return per_image_frame(2, 1.0, 1.0, 0)
    if entry["function"] == "imagenet_c_clean":         # same construction: 6/20 = 0.30 wrong
        return per_image_frame(6, 1.0, 1.0, 0)
    severity = entry["severity"]                        # gaussian noise: 0.60 at s1, 0.80 at s3
    return per_image_frame({1: 12, 3: 16}[severity], 1.0, 1.0, 0)


@pytest.mark.parametrize("with_clean_cell", [True, False])
def test_mce_and_relative_mce_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      with_clean_cell: bool) -> None:
    """gaussian_noise at severities 1 and 3 (errors 0.6, 0.8); clean error 0.3 in the
    imagenet_c_clean cell (same Resize 256 + CenterCrop 224 construction), 0.1 in `original`.

    CE = (0.6 + 0.8) / (2 × 0.886428) = 1.4 / 1.772856 = 0.789686...
    relative CE = ((0.6 − 0.3) + (0.8 − 0.3)) / (2 × (0.886428 − 0.43478))
                = 0.8 / 0.903296 = 0.885645...   (with `original`'s 0.1 it would be 1.328468...)
    mCE / relative mCE over the corruptions present = the same (one corruption); the 15-way
    numbers are null (a partial grid). Without the clean cell relative CE stays empty.
    """
    monkeypatch.chdir(tmp_path)
    extra = {f"gaussian_noise_s{s}": {"function": "imagenet_c_gaussian_noise", "severity": s}
             for s in (1, 3)}
    if with_clean_cell:
        extra["imagenet_c_clean"] = {"function": "imagenet_c_clean",
                                     "construction": "imagenet_c"}
    write_tree(tmp_path, ["manipulation=[]"], extra=extra, frames=_exact_cells)
    aggregate.main([])
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    report = summary["corruption_summary"]["smoke"]["sample"]["imagenet_c"]
    assert report["ce"]["gaussian_noise"]["value"] == pytest.approx(1.4 / 1.772856)
    assert report["ce"]["gaussian_noise"]["value"] == pytest.approx(0.789686, abs=1e-6)
    assert report["mce_over_present"]["value"] == pytest.approx(0.789686, abs=1e-6)
    assert report["mce"]["value"] is None
    if with_clean_cell:
        assert report["clean_cell"] == "imagenet_c_clean"
        assert report["clean_error"]["value"] == pytest.approx(0.3)
        assert report["relative_ce"]["gaussian_noise"]["value"] == pytest.approx(
            0.8 / 0.903296)
        assert report["relative_ce"]["gaussian_noise"]["value"] == pytest.approx(
            0.885645, abs=1e-6)
        assert report["relative_mce_over_present"]["value"] == pytest.approx(0.885645,
                                                                             abs=1e-6)
    else:
        assert report["clean_cell"].startswith("none: select the imagenet_c_clean cell")
        assert report["clean_error"]["value"] is None
        assert report["relative_ce"] == {}
        assert report["relative_mce_over_present"]["value"] is None


def test_released_images_are_their_own_group_with_the_constructed_clean_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, ["manipulation=[]", "+experiment=imagenet_c_released"])
    aggregate.main([])
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    groups = summary["corruption_summary"]["smoke"]["sample"]
    assert set(groups) == {"released"}
    report = groups["released"]
    assert report["clean_cell"] == "imagenet_c_clean" and report["complete"] is True
    assert report["clean_error"]["value"] == pytest.approx(CONSTRUCTED_CLEAN_WRONG / N_IMAGES)
    fog = [wrong_images("fog", s) / N_IMAGES for s in range(1, 6)]
    assert report["ce"]["fog"]["value"] == pytest.approx(sum(fog) / (5 * ALEXNET_ERRORS["fog"]))
