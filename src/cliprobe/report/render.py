"""Render :class:`~cliprobe.report.collect.RunData` as one self-contained HTML page.

Images are inlined as base64 PNG and the styles are inline, so the file opens anywhere with
no network. Tables are built generically: one dataset x manipulation table per model and
metric found in the cells, so new metrics need no code here.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape

from cliprobe.report.collect import RunData

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cliprobe report</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d2430}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #e3e7ee;padding-bottom:.3rem;margin-top:2.2rem}
.warn{background:#fff3cd;border:1px solid #e0b400;padding:.6rem 1rem;border-radius:6px}
table{border-collapse:collapse;margin:.6rem 0 1.4rem;font-size:.9rem}
th,td{border:1px solid #d5dae3;padding:.3rem .55rem;text-align:right}
th{background:#f3f5f9} td.name,th.name{text-align:left}
.sig{font-weight:700} .muted{color:#69707d;font-size:.85rem}
figure{display:inline-block;margin:.4rem;vertical-align:top}
figure img{max-width:560px;border:1px solid #e3e7ee}
figcaption{font-size:.8rem;color:#69707d}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600} dd{margin:0}
</style></head><body>
<h1>cliprobe report</h1>
<p class="muted">{{ subtitle }}</p>
{% if random_weights %}<p class="warn"><b>RANDOM WEIGHTS.</b> At least one model here has
random weights (the smoke model): its numbers test the pipeline and are not findings about
CLIP.</p>{% endif %}

<h2 id="provenance">Provenance</h2>
<dl>
<dt>git</dt><dd>{{ provenance.git }}</dd>
{% for name, model in provenance.models.items() %}
<dt>model {{ name }}</dt><dd>{{ model.arch }} · {{ model.weights }} · {{ model.precision }}
{% if model.quick_gelu %}· QuickGELU{% endif %}</dd>
{% endfor %}
<dt>datasets</dt><dd>{{ provenance.datasets | join(", ") }}</dd>
<dt>manipulations</dt><dd>{{ provenance.manipulations | join(", ") }}</dd>
<dt>seed</dt><dd>{{ params.get("seed") }}</dd>
<dt>retrieval</dt><dd>{{ params.get("retrieval") }}</dd>
<dt>statistics</dt><dd>{{ params.get("stats") }}</dd>
<dt>versions</dt><dd>{% for k, v in provenance.versions.items() %}{{ k }} {{ v }}
{%- if not loop.last %} · {% endif %}{% endfor %}</dd>
</dl>

<h2 id="tables">Dataset × manipulation</h2>
<p class="muted">Value [95% bootstrap interval]. {% if has_comparisons %}<b>Bold*</b>: the paired
difference from <i>original</i> has an interval that excludes 0.{% endif %}</p>
{% for table in tables %}
<h3>{{ table.model }} · {{ table.metric }}</h3>
{{ table.html | safe }}
{% endfor %}

{% for section, figures in figures.items() %}
<h2>{{ section }}</h2>
{% for figure in figures %}
<figure><img alt="{{ figure.name }}" src="data:image/png;base64,{{ figure.data }}">
<figcaption>{{ figure.name }}</figcaption></figure>
{% endfor %}
{% endfor %}

{% for name, table in extra_tables.items() %}
<h2>{{ name }}</h2>
{{ table | safe }}
{% endfor %}
</body></html>
"""


def _fmt(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.3f}"


def _shade(value: float) -> str:
    """A light background from red (0) to green (1) for values in [0, 1]."""
    if value is None or not 0.0 <= value <= 1.0:
        return ""
    return f"background:hsl({int(120 * value)},60%,90%)"


def metric_tables(cells: pd.DataFrame, comparisons: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One HTML table per (model, metric): datasets as rows, manipulations as columns."""
    significant: set[tuple[str, str, str, str]] = set()
    if comparisons is not None and "significant" in comparisons:
        rows = comparisons[comparisons["significant"].astype(bool)]
        significant = set(rows[["model", "dataset", "manipulation", "metric"]]
                          .itertuples(index=False, name=None))
    manipulations = list(dict.fromkeys(cells["manipulation"]))
    tables = []
    for (model, metric), group in cells.groupby(["model", "metric"], sort=False):
        head = "".join(f"<th>{html.escape(m)}</th>" for m in manipulations)
        body = []
        for dataset, rows in group.groupby("dataset", sort=False):
            by_manipulation = {row.manipulation: row for row in rows.itertuples()}
            cells_html = []
            for manipulation in manipulations:
                row = by_manipulation.get(manipulation)
                if row is None:
                    cells_html.append("<td></td>")
                    continue
                mark = (model, dataset, manipulation, metric) in significant
                text = f"{_fmt(row.value)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
                css = ' class="sig"' if mark else ""
                cells_html.append(f'<td{css} style="{_shade(row.value)}">{text}'
                                  f'{"*" if mark else ""}</td>')
            body.append(f'<tr><td class="name">{html.escape(str(dataset))}</td>'
                        f'{"".join(cells_html)}</tr>')
        tables.append({
            "model": model, "metric": metric,
            "html": f'<table><tr><th class="name">dataset</th>{head}</tr>{"".join(body)}</table>',
        })
    return tables


def _inline(figure: Path) -> dict[str, str]:
    return {"name": figure.name, "data": base64.b64encode(figure.read_bytes()).decode("ascii")}


def render(run: RunData, subtitle: str = "") -> str:
    """The report as an HTML string."""
    environment = Environment(autoescape=select_autoescape(default=True))
    template = environment.from_string(TEMPLATE)
    return template.render(
        subtitle=subtitle,
        random_weights=run.random_weights,
        provenance=run.provenance,
        params=run.params,
        tables=metric_tables(run.cells, run.comparisons),
        has_comparisons=run.comparisons is not None,
        figures={section: [_inline(f) for f in files] for section, files in run.figures.items()},
        extra_tables={name: frame.to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                          border=0)
                      for name, frame in run.extra_tables.items()},
    )


COMPARE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cliprobe comparison</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1400px;padding:0 1rem;color:#1d2430}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid #d5dae3;padding:.25rem .5rem;text-align:right}
th{background:#f3f5f9} td.name{text-align:left}
td.up{background:#d9f2dc} td.down{background:#f8d9d9} .muted{color:#69707d}
</style></head><body>
<h1>cliprobe comparison</h1>
<p class="muted">Runs: {{ labels | join(" · ") }}. Differences are against <b>{{ labels[0] }}</b>;
green / red cells: the two 95% intervals do not overlap (a conservative sign of a real
difference; a paired test needs both runs' per-image scores).</p>
{{ table | safe }}
</body></html>
"""


def render_comparison(table: pd.DataFrame, labels: list[str]) -> str:
    """The side-by-side comparison (from :func:`cliprobe.report.compare.compare`) as HTML."""
    base = labels[0]
    header = ["model", "dataset", "manipulation", "metric", *[f"{label}" for label in labels],
              *[f"Δ {label}" for label in labels[1:]]]
    rows = []
    for row in table.to_dict("records"):
        cells = [f'<td class="name">{html.escape(str(row[k]))}</td>'
                 for k in ("model", "dataset", "manipulation", "metric")]
        for label in labels:
            cells.append(f"<td>{_fmt(row[f'value ({label})'])} "
                         f"[{_fmt(row[f'ci_low ({label})'])}, "
                         f"{_fmt(row[f'ci_high ({label})'])}]</td>")
        for label in labels[1:]:
            difference = row[f"difference ({label} - {base})"]
            disjoint = bool(row[f"intervals disjoint ({label})"])
            css = ("up" if difference > 0 else "down") if disjoint else ""
            text = "–" if difference != difference else f"{difference:+.4f}"
            cells.append(f'<td class="{css}">{text}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    environment = Environment(autoescape=select_autoescape(default=True))
    return environment.from_string(COMPARE_TEMPLATE).render(
        labels=labels, table=f"<table><tr>{head}</tr>{''.join(rows)}</table>")
