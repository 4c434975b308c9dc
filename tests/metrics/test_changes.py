"""The change table every view of "what did the manipulation do" reads: paired where the
comparison exists, plain difference elsewhere, signed by the metric's better direction."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cliprobe.metrics.changes import (
    MAX_CHANGE_COLUMNS,
    change_cells,
    change_columns,
    change_table,
    direction,
)

COLUMNS = ["model", "dataset", "manipulation", "metric", "value", "ci_low", "ci_high",
           "n_images"]


def _cells() -> pd.DataFrame:
    rows = [("original", "zeroshot_acc1", 0.80), ("original", "attack_success_rate", 0.10),
            ("original", "cosine_drift", 1.0), ("original", "text_cosine", 0.3),
            ("grey", "zeroshot_acc1", 0.70), ("grey", "attack_success_rate", 0.40),
            ("grey", "cosine_drift", 0.95), ("grey", "text_cosine", 0.2),
            # only in the manipulated cell: nothing to compare it with
            ("grey", "word_search_gain", 0.05)]
    return pd.DataFrame([("M", "d", x, metric, v, v - 0.05, v + 0.05, 10)
                         for x, metric, v in rows], columns=COLUMNS)


def test_paired_rows_keep_their_test_and_the_rest_get_the_plain_difference() -> None:
    comparisons = pd.DataFrame([{
        "model": "M", "dataset": "d", "manipulation": "grey", "metric": "attack_success_rate",
        "difference": 0.31, "ci_low": 0.2, "ci_high": 0.4, "p_value": 0.001, "mcnemar_p": 0.002,
        "significant": "True", "resampled": "images", "n": 10}])
    table = change_table(_cells(), comparisons).set_index("metric")
    assert set(table.index) == {"zeroshot_acc1", "attack_success_rate", "cosine_drift",
                                "text_cosine"}
    attack = table.loc["attack_success_rate"]
    # the paired difference on the same images, not the difference of the two values
    assert attack["difference"] == pytest.approx(0.31) and attack["paired"]
    assert attack["significant"] and attack["difference_low"] == pytest.approx(0.2)
    # lower is better: a rise of the attack's success is harm
    assert attack["effect"] == pytest.approx(-0.31)
    top1 = table.loc["zeroshot_acc1"]
    assert top1["difference"] == pytest.approx(-0.10) and not top1["paired"]
    assert not top1["significant"] and math.isnan(top1["difference_low"])
    assert top1["effect"] == pytest.approx(-0.10)  # higher is better: a drop is harm
    # descriptive numbers (no better direction) have no effect
    assert math.isnan(table.loc["text_cosine", "effect"])


def test_direction_follows_the_registry() -> None:
    assert direction("recall_own_at_5") == 1.0
    assert direction("attack_success_rate") == -1.0
    assert math.isnan(direction("mass_in_box_word")) and math.isnan(direction("unknown"))


def test_change_cells_state_differences_in_the_metric_unit_by_family() -> None:
    comparisons = pd.DataFrame([{
        "model": "M", "dataset": "d", "manipulation": "grey", "metric": "zeroshot_acc1",
        "difference": -0.1, "ci_low": -0.15, "ci_high": -0.05, "p_value": 0.004,
        "mcnemar_p": float("nan"), "significant": True}])
    cells = change_cells(change_table(_cells(), comparisons))
    # descriptive metrics are left out; zero-shot before attacks before image retrieval
    assert cells["name"].tolist() == ["zeroshot_acc1", "attack_success_rate", "cosine_drift"]
    top1 = cells.iloc[0]
    assert top1["text"] == "−10.0*" and top1["effect"] == pytest.approx(-10.0)
    assert top1["difference"] == "−10.0 pt [−15.0, −5.0]"
    assert top1["levels"] == "80.0% → 70.0%" and top1["test"] == "significant, p = 0.004"
    drift = cells.iloc[2]
    assert drift["text"] == "−0.0500" and drift["test"] == "no paired test"
    assert change_cells(change_table(_cells().query("metric == 'text_cosine'"), None)).empty


def test_long_corruption_sweeps_leave_the_change_figure_to_their_severity_curves() -> None:
    few = ["grey", "imagenet_c_fog_1"]
    assert change_columns(few, {"imagenet_c_fog_1"}) == few
    sweep = [f"imagenet_c_fog_{s}_{i}" for s in range(1, 6) for i in range(5)]
    names = ["grey", *sweep, "typographic"]
    assert len(names) > MAX_CHANGE_COLUMNS
    assert change_columns(names, set(sweep)) == ["grey", "typographic"]
