"""The report's tables as HTML: per model × dataset, metrics as rows (grouped by family) and
manipulations as columns (grouped by kind), each cell ``value [interval]`` with its
significance mark, coloured where the paired test against ``original`` finds it better or
worse. The page's script sorts and filters them (``data-value`` holds the sortable number).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.metrics.registry import FAMILIES, MetricInfo, describe, family_order

GROUP_SEPARATOR = "\u001f"  # joins a column group's members in data-group (never in a name)


def inline_code(text: str) -> str:
    """``text`` escaped for HTML, with the registry's `backtick` spans as ``<code>``."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def metric_name(info: MetricInfo, code: bool = True) -> str:
    """A metric's label with its registry entry in a hover / focus tooltip."""
    tip = (f"<b>{html.escape(info.label)}</b> <code>{html.escape(info.name)}</code><br>"
           f"{inline_code(info.description)}<br><b>Unit</b> {html.escape(info.unit.name)} · "
           f"{html.escape(info.better_text)}"
           + (f"<br><b>Protocol</b> {inline_code(info.protocol)}" if info.protocol else "")
           + (f"<br><b>Reference</b> {inline_code(info.reference)}" if info.reference else ""))
    name = f' <code>{html.escape(info.name)}</code>' if code else ""
    return (f'<span class="metric" tabindex="0" data-metric="{html.escape(info.name)}">'
            f'{html.escape(info.label)}<span class="tip" role="tooltip">{tip}</span></span>{name}')


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _value_cell(info: MetricInfo, row: Any, change: Any, column: str) -> str:
    """One ``<td>``: value [interval], significance mark, tone and a title with the test."""
    unit = info.unit
    if row is None or not _finite(row.value):
        return f'<td data-col="{html.escape(column)}" data-value="">–</td>'
    interval = (f" <small>[{unit.number(row.ci_low)}, {unit.number(row.ci_high)}]</small>"
                if _finite(row.ci_low) and _finite(row.ci_high) else "")
    css, mark, title = [], "", ""
    if column == paths.CLEAN:
        css.append("ref")
    elif change is not None:
        title = f"{unit.signed(change.difference)} against original"
        if change.paired:
            title += (f" [{unit.signed(change.difference_low, False)}, "
                      f"{unit.signed(change.difference_high, False)}]")
            if _finite(change.p_value):
                title += f", paired bootstrap p = {change.p_value:.3g}"
            if _finite(change.mcnemar_p):
                title += f", McNemar p = {change.mcnemar_p:.3g}"
        if change.significant:
            mark = '<span class="sig">*</span>'
            title += " (significant)"
            if _finite(change.effect) and change.effect != 0:
                css.append("better" if change.effect > 0 else "worse")
    attributes = f' class="{" ".join(css)}"' if css else ""
    attributes += f' title="{html.escape(title)}"' if title else ""
    return (f'<td data-col="{html.escape(column)}" data-value="{float(row.value):.10g}"'
            f'{attributes}>{unit.value(row.value)}{mark}{interval}</td>')


def metric_table(table_id: str, cells: pd.DataFrame, changes: pd.DataFrame,
                 columns: Sequence[tuple[str, str]]) -> str:
    """The table of one model × dataset.

    ``cells``: its metrics/cells.csv rows; ``changes``: its change-table rows;
    ``columns``: (manipulation, group title) in display order, ``original`` first.
    """
    values = {(r.metric, r.manipulation): r for r in cells.itertuples()}
    change_rows = {(r.metric, r.manipulation): r for r in changes.itertuples()}
    metrics = sorted(dict.fromkeys(cells["metric"]), key=family_order)
    metrics = [m for m in metrics
               if any(_finite(getattr(values.get((m, c)), "value", None)) for c, _ in columns)]
    names = [name for name, _ in columns]
    # header: column groups, then manipulations (each sortable)
    groups: list[tuple[str, list[str]]] = []
    for name, group in columns:
        if groups and groups[-1][0] == group:
            groups[-1][1].append(name)
        else:
            groups.append((group, [name]))
    group_row = "".join(
        f'<th class="group" colspan="{len(members)}" '
        f'data-group="{html.escape(GROUP_SEPARATOR.join(members))}">{html.escape(group)}</th>'
        for group, members in groups)
    head_row = "".join(
        f'<th data-col="{html.escape(name)}" data-sort="{i + 1}"'
        f'{" data-keep" if name == paths.CLEAN else ""}>{html.escape(name)}</th>'
        for i, name in enumerate(names))
    bodies = []
    for family in FAMILIES:
        rows = []
        for metric in metrics:
            info = describe(metric)
            if info.family != family:
                continue
            tds = "".join(_value_cell(info, values.get((metric, name)),
                                      change_rows.get((metric, name)), name) for name in names)
            rows.append(metric_row(info, metric, tds))
        if rows:
            bodies.append(family_body(family, rows, len(names) + 1))
    return filterable_metric_table(table_id, group_row, head_row, bodies)


def metric_row(info: MetricInfo, metric: str, cells: str) -> str:
    """One metric's row: its name (searchable by label, code name and family), then ``cells``."""
    search = html.escape(f"{info.label} {metric} {info.family}")
    return (f'<tr data-search="{search}"><th class="name" scope="row">'
            f"{metric_name(info)}</th>{cells}</tr>")


def family_body(family: str, rows: Sequence[str], width: int) -> str:
    """The rows of one metric family under its heading row, ``width`` columns wide."""
    return (f'<tbody><tr class="family"><th colspan="{width}">'
            f'{html.escape(family)}</th></tr>{"".join(rows)}</tbody>')


def filterable_metric_table(table_id: str, group_row: str, head_row: str,
                            bodies: Sequence[str]) -> str:
    """A sortable metrics x columns table with its row and column filters (static/report.js)."""
    return (
        f'<div class="tools"><input type="search" placeholder="filter metrics…" '
        f'aria-label="filter metrics" data-filter-rows="{table_id}">'
        f'<input type="search" placeholder="filter manipulations…" '
        f'aria-label="filter manipulations" data-filter-cols="{table_id}"></div>'
        f'<div class="scroll"><table class="metrics sortable" id="{table_id}"><thead>'
        f'<tr><th class="name" rowspan="2" data-sort="0">metric</th>{group_row}</tr>'
        f'<tr>{head_row}</tr></thead>{"".join(bodies)}</table></div>'
    )


def plain_table(table_id: str, frame: pd.DataFrame) -> str:
    """A CSV under metrics/ as a sortable table (numbers to 4 significant digits)."""
    head = "".join(f'<th data-sort="{i}">{html.escape(str(c))}</th>'
                   for i, c in enumerate(frame.columns))
    rows = []
    for record in frame.itertuples(index=False):
        tds = []
        for value in record:
            if isinstance(value, bool) or not isinstance(value, int | float):
                tds.append(f"<td>{html.escape('' if value is None else str(value))}</td>")
            elif _finite(value):
                tds.append(f'<td data-value="{float(value):.10g}">{value:.4g}</td>')
            else:
                tds.append('<td data-value="">–</td>')
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return (f'<div class="scroll"><table class="plain sortable" id="{table_id}"><thead><tr>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def estimate_table(table_id: str, first: str, rows: list[tuple[str, dict[str, Any]]],
                   units: dict[str, MetricInfo]) -> str:
    """A sortable table of estimates: one row per ``(name, {column: {value, ci_low,
    ci_high}})``, each column stated in its metric's unit (``units``: column -> entry)."""
    head = (f'<th data-sort="0">{html.escape(first)}</th>'
            + "".join(f'<th data-sort="{i + 1}">{metric_name(info, code=False)}</th>'
                      for i, info in enumerate(units.values())))
    body = []
    for name, estimates in rows:
        tds = [f"<td>{html.escape(name)}</td>"]
        for column, info in units.items():
            estimate = estimates.get(column) or {}
            value = estimate.get("value")
            if not _finite(value):
                tds.append('<td data-value="">–</td>')
                continue
            low, high = estimate.get("ci_low"), estimate.get("ci_high")
            unit = info.unit
            interval = (f" <small>[{unit.number(low)}, {unit.number(high)}]</small>"
                        if _finite(low) and _finite(high) else "")
            tds.append(f'<td data-value="{float(value):.10g}">{unit.value(value)}{interval}</td>')
        body.append(f"<tr>{''.join(tds)}</tr>")
    return (f'<div class="scroll"><table class="plain sortable" id="{table_id}"><thead><tr>'
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
