"""The report's interactive figures: Vega-Lite specs built from small tables, checked for the
numbers they carry, their tooltips, and that Vega draws them (vl-convert, no browser)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from cliprobe.metrics.changes import change_table
from cliprobe.report import charts

vl_convert = pytest.importorskip("vl_convert")


def _data(spec: dict[str, Any]) -> pd.DataFrame:
    """The one inline data set of a spec (Altair names it by its hash)."""
    [rows] = spec["datasets"].values()
    return pd.DataFrame(rows)


def _tooltips(spec: dict[str, Any]) -> set[str]:
    layers = spec.get("layer", [spec])
    return {t.get("title", t["field"]) for layer in layers
            for t in layer.get("encoding", {}).get("tooltip", [])}


def _severity() -> pd.DataFrame:
    """plots/severity.csv rows of one model × dataset: two corruptions, severity 0 to 2."""
    return pd.DataFrame({
        "model": "M", "dataset": "d", "construction": "imagenet_c",
        "corruption": ["none", "fog", "fog", "snow", "snow"], "severity": [0, 1, 2, 1, 2],
        "manipulation": ["original", "fog_1", "fog_2", "snow_1", "snow_2"],
        "zeroshot_error": [0.2, 0.3, 0.5, 0.35, 0.6],
        "zeroshot_error_ci_low": [0.1, 0.2, 0.4, 0.3, 0.5],
        "zeroshot_error_ci_high": [0.3, 0.4, 0.6, 0.4, 0.7]})


def test_change_heatmap_colours_by_direction_and_marks_the_paired_test() -> None:
    cells = pd.DataFrame([
        ("M", "d", x, metric, v, v - 0.05, v + 0.05, 40)
        for x, metric, v in [("original", "zeroshot_acc1", 0.8),
                             ("original", "attack_success_rate", 0.1),
                             ("original", "mass_in_box_word", 0.3),
                             ("grey", "zeroshot_acc1", 0.6), ("grey", "attack_success_rate", 0.05),
                             ("grey", "mass_in_box_word", 0.5),
                             ("blurred", "zeroshot_acc1", 0.79)]],
        columns=["model", "dataset", "manipulation", "metric", "value", "ci_low", "ci_high",
                 "n_images"])
    comparisons = pd.DataFrame([{
        "model": "M", "dataset": "d", "manipulation": "grey", "metric": "zeroshot_acc1",
        "difference": -0.2, "ci_low": -0.3, "ci_high": -0.1, "p_value": 0.001,
        "mcnemar_p": 0.002, "significant": True}])
    spec = charts.change_heatmap(change_table(cells, comparisons), ["grey", "blurred"])
    assert spec is not None and "$schema" not in spec
    data = _data(spec).set_index(["name", "manipulation"])
    # descriptive statistics (no better direction) are not coloured as good or bad
    assert "mass_in_box_word" not in set(data.index.get_level_values("name"))
    assert data.loc[("zeroshot_acc1", "grey"), "text"] == "−20.0*"
    assert data.loc[("zeroshot_acc1", "grey"), "effect"] == pytest.approx(-20.0)
    # an attack succeeding less often is better: green, although the number fell
    assert data.loc[("attack_success_rate", "grey"), "effect"] == pytest.approx(5.0)
    assert data.loc[("zeroshot_acc1", "blurred"), "test"] == "no paired test"
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert scale["domain"] == pytest.approx([-20.0, 0, 20.0])  # symmetric around no change
    assert {"original → cell", "difference", "paired test"} <= _tooltips(spec)
    svg = vl_convert.vegalite_to_svg(spec)
    assert "−20.0*" in svg and "grey" in svg
    # only metrics without a better direction: nothing to colour
    only = cells[cells["metric"] == "mass_in_box_word"]
    assert charts.change_heatmap(change_table(only, None), ["grey"]) is None


def test_severity_curves_carry_interval_and_a_legend_selection() -> None:
    spec = charts.severity_chart(_severity(), "zeroshot_error")
    assert spec is not None
    data = _data(spec)
    # in the unit's scale (percent) with the interval band, severity 0 = the original cell
    assert data["value"].tolist() == pytest.approx([20, 30, 50, 35, 60])
    assert data["low"].tolist() == pytest.approx([10, 20, 40, 30, 50])
    [band, line] = spec["layer"]
    assert band["mark"]["type"] == "area" and line["mark"]["type"] == "line"
    # clicking a legend entry brings one corruption forward (Altair lifts the selection to the
    # top of a layered spec and names the layer it lives in)
    [pick] = spec["params"]
    assert pick["bind"] == "legend" and pick["select"]["fields"] == ["corruption"]
    assert pick["views"] == [line["name"]]
    assert {"95% low", "95% high", "zero-shot top-1 error"} <= _tooltips(spec)
    assert line["encoding"]["y"]["title"] == "zero-shot top-1 error (%)"
    assert "<svg" in vl_convert.vegalite_to_svg(spec)
    assert charts.severity_chart(_severity(), "seed001_accuracy") is None


def test_corruption_heatmap_leaves_out_severity_zero_and_states_intervals() -> None:
    spec = charts.corruption_heatmap(_severity(), "zeroshot_error")
    assert spec is not None
    data = _data(spec)
    assert sorted(data["severity"]) == [1, 1, 2, 2]
    assert data.set_index("manipulation").loc["fog_2", "estimate"] == "50.0% [40.0, 60.0]"
    colour = spec["layer"][0]["encoding"]["color"]["scale"]
    assert colour["scheme"] == "orangered" and colour["domain"] == [0, 100.0]  # lower is better
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["fog", "snow"]


def test_word_matrix_puts_blank_first_and_explains_each_cell() -> None:
    pairs = pd.DataFrame({
        "object": ["apple", "apple", "apple", "dog"], "word": [None, "ipod", "dog", "ipod"],
        "condition": ["clean", "attack", "attack", "attack"], "n_images": [3, 3, 2, 1],
        "p_object": [0.9, 0.2, 0.5, 0.4], "p_word": [0.01, 0.75, 0.4, 0.5],
        "attack_success": [float("nan"), 2 / 3, 0.5, 1.0], "acc1": [1.0, 0.33, 0.5, 0.0],
        "text_cosine": [float("nan"), 0.61, 0.72, 0.55]})
    spec = charts.word_matrix(pairs)
    assert spec is not None
    assert spec["encoding"]["x"]["sort"] == ["blank", "dog", "ipod"]
    data = _data(spec).set_index(["object", "word"])
    assert data.loc[("apple", "ipod"), "p_word_pct"] == pytest.approx(75.0)
    assert data.loc[("apple", "ipod"), "fooled"] == "67% fooled"
    assert data.loc[("apple", "blank"), "fooled"] == ""
    assert {"written word", "p(word) %", "p(object) %", "predicted as the word", "images",
            "text cosine"} <= _tooltips(spec)
    assert "ipod" in vl_convert.vegalite_to_svg(spec)
    assert charts.word_matrix(pairs.iloc[:0]) is None
