"""The answer at the top of the report: headline changes in words and numbers, by effect."""

from __future__ import annotations

import pandas as pd

from cliprobe.metrics.changes import change_table
from cliprobe.report.answer import answer

CELL_COLUMNS = ["model", "dataset", "manipulation", "metric", "value", "ci_low", "ci_high",
                "n_images", "n_skipped", "random_weights"]


def _cells(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([(m, d, x, metric, v, lo, hi, 100, 0, False)
                         for m, d, x, metric, v, lo, hi in rows], columns=CELL_COLUMNS)


def _comparison(x: str, metric: str, difference: float, low: float, high: float, p: float,
                significant: bool, dataset: str = "photos") -> dict:
    return {"model": "M", "dataset": dataset, "manipulation": x, "metric": metric,
            "difference": difference, "ci_low": low, "ci_high": high, "p_value": p,
            "mcnemar_p": float("nan"), "significant": significant, "resampled": "images",
            "n": 100}


def test_changes_are_worded_with_interval_and_significance_and_ordered_by_harm() -> None:
    cells = _cells([
        ("M", "photos", "original", "zeroshot_acc1", 0.75, 0.70, 0.80),
        ("M", "photos", "original", "recall_own_at_1", 0.90, 0.85, 0.95),
        ("M", "photos", "original", "cosine_drift", 1.0, 1.0, 1.0),
        ("M", "photos", "blurred", "zeroshot_acc1", 0.73, 0.68, 0.78),
        ("M", "photos", "blurred", "recall_own_at_1", 0.90, 0.85, 0.95),
        ("M", "photos", "grey", "zeroshot_acc1", 0.627, 0.58, 0.67),
        ("M", "photos", "grey", "recall_own_at_1", 0.88, 0.82, 0.93),
        ("M", "photos", "cropped", "zeroshot_acc1", 0.76, 0.71, 0.81),
        ("M", "photos", "cropped", "recall_own_at_1", 0.70, 0.62, 0.78),
    ])
    comparisons = pd.DataFrame([
        _comparison("blurred", "zeroshot_acc1", -0.02, -0.05, 0.01, 0.2, False),
        _comparison("blurred", "recall_own_at_1", 0.0, 0.0, 0.0, 1.0, False),
        _comparison("grey", "zeroshot_acc1", -0.123, -0.160, -0.081, 0.0005, True),
        _comparison("grey", "recall_own_at_1", -0.02, -0.05, 0.01, 0.3, False),
        _comparison("cropped", "zeroshot_acc1", 0.01, -0.02, 0.04, 0.5, False),
        # the largest harm of all, on the second headline metric: cropped goes first
        _comparison("cropped", "recall_own_at_1", -0.20, -0.28, -0.12, 0.0001, True),
    ])
    [pair] = answer(cells, change_table(cells, comparisons), {})
    assert pair.primary is not None and pair.primary.name == "zeroshot_acc1"
    assert [e.metric.name for e in pair.baseline] == ["zeroshot_acc1", "recall_own_at_1"]
    assert pair.baseline[0].text == "75.0% [70.0, 80.0]"
    assert [c.manipulation for c in pair.cells] == ["cropped", "grey", "blurred"]
    grey = pair.cells[1]
    top1 = grey.changes[0]
    assert (top1.metric.label, top1.difference_text, top1.verdict, top1.tone) == (
        "zero-shot top-1", "−12.3 pt [−16.0, −8.1]", "significant", "worse")
    assert top1.levels_text == "75.0% → 62.7%" and "p < 0.001" in top1.detail
    assert pair.cells[2].changes[1].verdict == "unchanged"
    assert pair.cells[2].changes[0].verdict == "not significant"
    assert pair.most_harmful is pair.cells[0] and pair.harmful_count == 2
    assert pair.cells[0].worst.metric.name == "recall_own_at_1"  # type: ignore[union-attr]
    # significant changes are read first within a manipulation
    assert [c.metric.name for c in pair.cells[0].shown] == ["recall_own_at_1", "zeroshot_acc1"]


def test_typographic_cells_carry_attack_numbers_and_their_gallery() -> None:
    cells = _cells([
        ("M", "photos", "original", "zeroshot_acc1", 0.4, 0.3, 0.5),
        ("M", "photos", "typographic", "zeroshot_acc1", 0.2, 0.1, 0.3),
        ("M", "photos", "typographic", "attack_success_rate", 0.7, 0.6, 0.8),
        ("M", "photos", "typographic", "word_probability", 0.65, 0.55, 0.75),
    ])
    galleries = {("M", "photos", "typographic"): "gallery_M_photos_typographic.png"}
    [pair] = answer(cells, change_table(cells, None), galleries)
    assert pair.original_attack is None
    [cell] = pair.cells
    assert [e.metric.name for e in cell.attack] == ["attack_success_rate", "word_probability"]
    assert cell.attack[0].text == "70.0% [60.0, 80.0]"
    assert cell.gallery == "gallery_M_photos_typographic.png"
    # no paired comparison: the difference is stated, without interval or significance
    assert cell.changes[0].difference_text == "−20.0 pt"
    assert cell.changes[0].verdict == "no paired test" and not cell.changes[0].significant


def test_real_typographic_photos_attack_in_original_and_manipulations_change_it() -> None:
    cells = _cells([
        ("M", "wild", "original", "zeroshot_acc1", 0.4, 0.3, 0.5),
        ("M", "wild", "original", "attack_success_rate", 0.6, 0.5, 0.7),
        ("M", "wild", "original", "word_probability", 0.55, 0.45, 0.65),
        ("M", "wild", "grey", "zeroshot_acc1", 0.4, 0.3, 0.5),
        ("M", "wild", "grey", "attack_success_rate", 0.7, 0.6, 0.8),
    ])
    comparisons = pd.DataFrame([
        _comparison("grey", "attack_success_rate", 0.1, 0.04, 0.16, 0.01, True, "wild"),
        _comparison("grey", "zeroshot_acc1", 0.0, 0.0, 0.0, 1.0, False, "wild")])
    galleries = {("M", "wild", "original"): "gallery_M_wild_original.png"}
    [pair] = answer(cells, change_table(cells, comparisons), galleries)
    # the photos as taken are the attack: its numbers and gallery sit beside the baseline
    assert pair.original_attack is not None
    assert [e.metric.name for e in pair.original_attack.attack] == [
        "attack_success_rate", "word_probability"]
    assert pair.original_attack.gallery == "gallery_M_wild_original.png"
    # grey changes the attack's success: a change like any other (lower is better, so a rise
    # of 10 points is harm), not another attack block
    [cell] = pair.cells
    assert cell.attack == []
    rise = next(c for c in cell.changes if c.metric.name == "attack_success_rate")
    assert (rise.difference_text, rise.tone) == ("+10.0 pt [+4.0, +16.0]", "worse")
    assert cell.worst is rise and pair.most_harmful is cell


def test_a_dataset_without_headline_metrics_gets_no_primary() -> None:
    cells = _cells([("M", "d", "original", "cosine_drift", 1.0, 1.0, 1.0),
                    ("M", "d", "grey", "cosine_drift", 0.9, 0.8, 0.95)])
    [pair] = answer(cells, change_table(cells, None), {})
    assert pair.primary is None and pair.baseline == [] and pair.cells[0].changes == []
