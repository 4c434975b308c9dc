"""The report's interactive figures as Vega-Lite specifications (built with Altair).

Each function takes a table and returns a JSON-ready Vega-Lite dict with its data inlined; the
page embeds it with the vega-embed bundle the report inlines (:mod:`cliprobe.report.assets`),
so nothing is fetched when the page opens. Every chart has tooltips; the PNG of the same
numbers (for ``dvc plots`` and papers) is drawn by the plot stage.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from cliprobe.metrics.changes import change_cells
from cliprobe.metrics.registry import describe
from cliprobe.plots.changes import DIVERGING

#: Width of one heatmap column / height of one row, pixels.
STEP = 50
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _config(chart: alt.TopLevelMixin) -> dict[str, Any]:
    spec = chart.configure(font=FONT).configure_view(stroke=None).to_dict()
    spec.pop("$schema", None)  # vega-embed never needs it; keeps the page free of URLs
    return spec


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def change_heatmap(changes: pd.DataFrame, manipulations: list[str]) -> dict[str, Any] | None:
    """Metrics (rows, by family) × manipulations (columns) of one model × dataset, coloured by
    the direction-aware change against ``original`` (green = better, red = worse), the signed
    difference written in each cell, ``*`` where the paired test is significant.

    ``changes``: :func:`cliprobe.metrics.changes.change_table` rows of one pair. None when no
    metric has a better direction.
    """
    data = change_cells(changes[changes["manipulation"].isin(manipulations)])
    if data.empty:
        return None
    metric_order = list(dict.fromkeys(data["metric"]))
    limit = max(float(data["effect"].abs().max()), 1e-9)
    x = alt.X("manipulation:N", sort=manipulations, title=None,
              axis=alt.Axis(labelAngle=-40, orient="top"))
    y = alt.Y("metric:N", sort=metric_order, title=None)
    base = alt.Chart(data).encode(x=x, y=y)
    tooltip = [alt.Tooltip("metric:N"), alt.Tooltip("name:N"),
               alt.Tooltip("manipulation:N"), alt.Tooltip("levels:N", title="original → cell"),
               alt.Tooltip("difference:N", title="difference"),
               alt.Tooltip("test:N", title="paired test"), alt.Tooltip("better:N")]
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("effect:Q", title="change (better +)",
                        scale=alt.Scale(domain=[-limit, 0, limit], range=list(DIVERGING)),
                        legend=alt.Legend(orient="right", gradientLength=120)),
        tooltip=tooltip)
    text = base.mark_text(fontSize=9).encode(text="text:N", tooltip=tooltip)
    chart = (cells + text).properties(width=max(STEP * len(manipulations), 160),
                                      height=alt.Step(22))
    return _config(chart)


def severity_chart(severity: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """``metric`` (with its interval band) against severity, one line per corruption; click a
    legend entry to bring one corruption forward. ``severity``: plots/severity.csv rows of one
    model × dataset × construction."""
    if metric not in severity or severity[metric].isna().all():
        return None
    info = describe(metric)
    scale = info.unit.scale
    data = pd.DataFrame({
        "corruption": severity["corruption"], "severity": severity["severity"],
        "manipulation": severity["manipulation"],
        "value": severity[metric] * scale,
        "low": severity.get(f"{metric}_ci_low", severity[metric]) * scale,
        "high": severity.get(f"{metric}_ci_high", severity[metric]) * scale,
    })
    pick = alt.selection_point(fields=["corruption"], bind="legend")
    suffix = f" ({info.unit.suffix.strip()})" if info.unit.suffix else ""
    x = alt.X("severity:O", title="severity (0 = original)", axis=alt.Axis(labelAngle=0))
    y = alt.Y("value:Q", title=f"{info.label}{suffix}")
    colour = alt.Color("corruption:N", legend=alt.Legend(title="corruption (click)"))
    fade = alt.condition(pick, alt.value(1.0), alt.value(0.12))
    tooltip = [alt.Tooltip("corruption:N"), alt.Tooltip("severity:O"),
               alt.Tooltip("manipulation:N", title="cell"),
               alt.Tooltip("value:Q", title=info.label, format=".1f"),
               alt.Tooltip("low:Q", title="95% low", format=".1f"),
               alt.Tooltip("high:Q", title="95% high", format=".1f")]
    base = alt.Chart(data).encode(x=x, color=colour)
    band = base.mark_area(opacity=0.12).encode(
        y="low:Q", y2="high:Q", opacity=alt.condition(pick, alt.value(0.18), alt.value(0.02)))
    line = base.mark_line(point=True).encode(y=y, opacity=fade, tooltip=tooltip).add_params(pick)
    return _config((band + line).properties(width=420, height=260))


def corruption_heatmap(severity: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """Corruption (rows, in the table's order) × severity 1-5 of ``metric``, with its interval
    in the tooltip. ``severity``: plots/severity.csv rows of one model × dataset ×
    construction (severity 0, the original cell, is left out)."""
    rows = severity[severity["severity"] > 0]
    if metric not in rows or rows[metric].isna().all():
        return None
    info = describe(metric)
    unit = info.unit
    data = pd.DataFrame({
        "corruption": rows["corruption"], "severity": rows["severity"],
        "manipulation": rows["manipulation"], "value": rows[metric] * unit.scale,
        "estimate": [f"{unit.value(v)} [{unit.number(lo)}, {unit.number(hi)}]"
                     for v, lo, hi in zip(rows[metric],
                                          rows.get(f"{metric}_ci_low", rows[metric]),
                                          rows.get(f"{metric}_ci_high", rows[metric]),
                                          strict=True)]})
    order = list(dict.fromkeys(data["corruption"]))
    worse_high = info.better == "lower"
    tooltip = [alt.Tooltip("corruption:N"), alt.Tooltip("severity:O"),
               alt.Tooltip("manipulation:N", title="cell"),
               alt.Tooltip("estimate:N", title=f"{info.label} [95%]")]
    base = alt.Chart(data).encode(
        x=alt.X("severity:O", title="severity", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("corruption:N", sort=order, title=None))
    top = unit.scale if unit.suffix == "%" else float(data["value"].abs().max() or 1.0)
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("value:Q", title=f"{info.label}{' (%)' if unit.suffix else ''}",
                        scale=alt.Scale(scheme="orangered" if worse_high else "greens",
                                        domain=[0, top])),
        tooltip=tooltip)
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("value:Q", format=f".{unit.decimals}f"), tooltip=tooltip,
        color=alt.condition(f"datum.value > {0.6 * top}", alt.value("white"),
                            alt.value("black")))
    return _config((cells + text).properties(width=alt.Step(46), height=alt.Step(20)))


def word_matrix(pairs: pd.DataFrame) -> dict[str, Any] | None:
    """Object (rows) × written word (columns) of one cell, coloured by p(word), with p(object),
    attack success and images in the tooltip; ``blank`` and the object's own name first.
    ``pairs``: plots/word_pairs.csv rows of one cell."""
    if pairs.empty:
        return None
    data = pairs.copy()
    data["word"] = data["word"].fillna("blank").astype(str)
    data["p_word_pct"] = data["p_word"] * 100
    data["p_object_pct"] = data["p_object"] * 100
    data["fooled"] = data["attack_success"].map(
        lambda v: "" if not _finite(v) else f"{100 * v:.0f}% fooled")
    words = sorted(data["word"].unique(), key=lambda w: (w != "blank", w))
    tooltip = [alt.Tooltip("object:N"), alt.Tooltip("word:N", title="written word"),
               alt.Tooltip("condition:N"), alt.Tooltip("n_images:Q", title="images"),
               alt.Tooltip("p_word_pct:Q", title="p(word) %", format=".1f"),
               alt.Tooltip("p_object_pct:Q", title="p(object) %", format=".1f"),
               alt.Tooltip("fooled:N", title="predicted as the word")]
    if "text_cosine" in data:
        data["text_cosine"] = data["text_cosine"].astype(float)
        tooltip.append(alt.Tooltip("text_cosine:Q", title="text cosine", format=".3f"))
    chart = alt.Chart(data).mark_rect(stroke="white").encode(
        x=alt.X("word:N", sort=words, title="written word",
                axis=alt.Axis(labelAngle=-40, orient="top")),
        y=alt.Y("object:N", title="object"),
        color=alt.Color("p_word_pct:Q", title="p(word) %",
                        scale=alt.Scale(scheme="oranges", domain=[0, 100])),
        tooltip=tooltip,
    ).properties(width=alt.Step(26), height=alt.Step(22))
    return _config(chart)


def grid_heatmap(cells: pd.DataFrame, metric: str,
                 manipulations: list[str]) -> dict[str, Any] | None:
    """Dataset (rows) × manipulation (columns) of one model's ``metric``, each cell its value
    in the metric's unit with the interval in the tooltip (the interactive twin of the plot
    stage's ``heatmap_<model>.png`` panel). ``cells``: metrics/cells.csv rows of one model.
    None when fewer than two datasets have the metric (one row says nothing the per-pair
    change chart does not)."""
    rows = cells[(cells["metric"] == metric) & cells["value"].notna()]
    if rows["dataset"].nunique() < 2:
        return None
    info = describe(metric)
    unit = info.unit
    data = pd.DataFrame({
        "dataset": rows["dataset"], "manipulation": rows["manipulation"],
        "value": rows["value"] * unit.scale,
        "estimate": [f"{unit.value(v)} [{unit.number(lo)}, {unit.number(hi)}]"
                     for v, lo, hi in zip(rows["value"], rows["ci_low"], rows["ci_high"],
                                          strict=True)]})
    order = [m for m in manipulations if m in set(data["manipulation"])]
    top = unit.scale if unit.suffix == "%" else float(data["value"].abs().max() or 1.0)
    tooltip = [alt.Tooltip("dataset:N"), alt.Tooltip("manipulation:N"),
               alt.Tooltip("estimate:N", title=f"{info.label} [95%]")]
    base = alt.Chart(data).encode(
        x=alt.X("manipulation:N", sort=order, title=None,
                axis=alt.Axis(labelAngle=-40, orient="top")),
        y=alt.Y("dataset:N", title=None))
    cells_layer = base.mark_rect(stroke="white").encode(
        color=alt.Color("value:Q", title=f"{info.label}{' (%)' if unit.suffix else ''}",
                        scale=alt.Scale(scheme="viridis", domain=[0, top])),
        tooltip=tooltip)
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("value:Q", format=f".{unit.decimals}f"), tooltip=tooltip,
        color=alt.condition(f"datum.value < {0.6 * top}", alt.value("white"),
                            alt.value("black")))
    return _config((cells_layer + text).properties(width=alt.Step(56), height=alt.Step(24)))
