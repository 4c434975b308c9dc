"""Render the side-by-side comparison of runs (:func:`cliprobe.report.compare.compare`) in the
report's layout: what changed first (the flagged differences, most harmful first), then per
model × dataset a table of every metric (rows, by family) with, per manipulation, each run's
value and the signed difference from the first run, coloured where flagged.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from markupsafe import Markup

from cliprobe import paths
from cliprobe.metrics.registry import FAMILIES, MetricInfo, describe, family_order, lookup
from cliprobe.report.render import page_assets, page_environment
from cliprobe.report.tables import (
    GROUP_SEPARATOR,
    family_body,
    filterable_metric_table,
    metric_row,
)

#: Separates a manipulation from its sub-column's index in ``data-col`` (the page's filter
#: matches the part before it).
SUB = "\u001e"
#: At most this many flagged differences listed per model × dataset before "more".
SHOWN = 10


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass
class Difference:
    """One metric of one cell, ``label`` against the first run."""

    manipulation: str
    metric: MetricInfo
    base: float
    value: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str  # 'paired' or 'intervals'
    flagged: bool

    @property
    def effect(self) -> float:
        sign = {"higher": 1.0, "lower": -1.0}.get(self.metric.better, math.nan)
        return self.difference * sign

    @property
    def tone(self) -> str:
        if not self.flagged or not _finite(self.effect) or self.effect == 0:
            return "same"
        return "better" if self.effect > 0 else "worse"

    @property
    def text(self) -> str:
        unit = self.metric.unit
        text = unit.signed(self.difference)
        if self.test == "paired" and _finite(self.low) and _finite(self.high):
            text += f" [{unit.signed(self.low, False)}, {unit.signed(self.high, False)}]"
        return text

    @property
    def detail(self) -> str:
        unit = self.metric.unit
        text = f"{unit.value(self.base)} → {unit.value(self.value)}; "
        if self.test == "paired":
            p = ("p < 0.001" if _finite(self.p_value) and self.p_value < 0.001
                 else f"p = {self.p_value:.3g}" if _finite(self.p_value) else "")
            text += (f"paired test on the same images: "
                     f"{'significant' if self.flagged else 'not significant'} ({p})")
        else:
            text += ("95% intervals do not overlap" if self.flagged
                     else "95% intervals overlap (no paired test: other images)")
        return text


def differences(table: pd.DataFrame, base: str, label: str) -> pd.DataFrame:
    """Rows of ``table`` with both runs' values, as :class:`Difference` objects per pair."""
    return table[table[f"value ({base})"].notna() & table[f"value ({label})"].notna()]


def _difference(row: dict[str, Any], base: str, label: str) -> Difference:
    paired = row.get(f"test ({label})") == "paired"
    difference = (row[f"paired difference ({label})"] if paired
                  else row[f"difference ({label} - {base})"])
    return Difference(
        row["manipulation"], describe(row["metric"]), row[f"value ({base})"],
        row[f"value ({label})"], float(difference),
        float(row.get(f"paired ci_low ({label})", math.nan)) if paired else math.nan,
        float(row.get(f"paired ci_high ({label})", math.nan)) if paired else math.nan,
        float(row.get(f"p_value ({label})", math.nan)) if paired else math.nan,
        "paired" if paired else "intervals", bool(row[f"flag ({label})"]))


def _table(table_id: str, rows: pd.DataFrame, labels: list[str]) -> str:
    base = labels[0]
    manipulations = sorted(dict.fromkeys(rows["manipulation"]),
                           key=lambda m: m != paths.CLEAN)  # original first, then as given
    by_key = {(r["metric"], r["manipulation"]): r for r in rows.to_dict("records")}
    metrics = sorted(dict.fromkeys(rows["metric"]), key=family_order)
    width = 2 * len(labels) - 1  # each run's value, then each difference from the base
    groups = "".join(
        f'<th class="group" colspan="{width}" data-group="'
        f'{html.escape(GROUP_SEPARATOR.join(f"{m}{SUB}{i}" for i in range(width)))}">'
        f"{html.escape(m)}</th>" for m in manipulations)
    heads, column = [], 1
    for m in manipulations:
        names = [*labels, *(f"Δ {label} − {base}" for label in labels[1:])]
        for i, name in enumerate(names):
            heads.append(f'<th data-col="{html.escape(m)}{SUB}{i}" data-sort="{column}">'
                         f"{html.escape(name)}</th>")
            column += 1
    bodies = []
    for family in FAMILIES:
        body = []
        for metric in metrics:
            info = describe(metric)
            if info.family != family:
                continue
            unit = info.unit
            tds = []
            for m in manipulations:
                row = by_key.get((metric, m))
                for i, label in enumerate(labels):
                    col = f'{html.escape(m)}{SUB}{i}'
                    value = None if row is None else row.get(f"value ({label})")
                    if not _finite(value):
                        tds.append(f'<td data-col="{col}" data-value="">–</td>')
                        continue
                    low, high = row.get(f"ci_low ({label})"), row.get(f"ci_high ({label})")
                    interval = (f" <small>[{unit.number(low)}, {unit.number(high)}]</small>"
                                if _finite(low) and _finite(high) else "")
                    tds.append(f'<td data-col="{col}" data-value="{float(value):.10g}">'
                               f"{unit.value(value)}{interval}</td>")
                for j, label in enumerate(labels[1:]):
                    col = f"{html.escape(m)}{SUB}{len(labels) + j}"
                    if row is None or not (_finite(row.get(f"value ({base})"))
                                           and _finite(row.get(f"value ({label})"))):
                        tds.append(f'<td data-col="{col}" data-value="">–</td>')
                        continue
                    d = _difference(row, base, label)
                    css = f' class="{d.tone}"' if d.tone != "same" else ""
                    mark = '<span class="sig">*</span>' if d.flagged else ""
                    tds.append(f'<td data-col="{col}" data-value="{d.difference:.10g}"{css} '
                               f'title="{html.escape(d.detail)}">{html.escape(d.text)}{mark}'
                               f"</td>")
            body.append(metric_row(info, metric, "".join(tds)))
        if body:
            bodies.append(family_body(family, body, 1 + len(heads)))
    return filterable_metric_table(table_id, groups, "".join(heads), bodies)


def render_comparison(table: pd.DataFrame, labels: list[str],
                      random_weights: bool = False) -> str:
    """The comparison page (``cliprobe report --compare``) as an HTML string."""
    base = labels[0]
    pairs = []
    for (model, dataset), rows in table.groupby(["model", "dataset"], sort=False):
        flagged: dict[str, list[Difference]] = {}
        counts: dict[str, dict[str, int]] = {}
        for label in labels[1:]:
            both = differences(rows, base, label)
            found = [_difference(r, base, label) for r in both.to_dict("records")]
            counts[label] = {"compared": len(found),
                             "paired": sum(1 for d in found if d.test == "paired"),
                             "flagged": sum(1 for d in found if d.flagged)}
            shown = [d for d in found if d.flagged]
            shown.sort(key=lambda d: (d.effect if _finite(d.effect) else math.inf,
                                      family_order(d.metric.name)))
            flagged[label] = shown
        pairs.append({"model": model, "dataset": dataset, "flagged": flagged,
                      "counts": counts,
                      "table": Markup(_table(f"table-{len(pairs)}", rows, labels))})
    names = set(table["metric"])
    glossary = [describe(n) for n in sorted((n for n in names if lookup(n)), key=family_order)]
    template = page_environment().get_template("compare.html.j2")
    return template.render(labels=labels, base=base, pairs=pairs, shown=SHOWN,
                           random_weights=random_weights,
                           glossary=glossary, **page_assets(False))
