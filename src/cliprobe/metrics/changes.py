"""Every metric of every manipulated cell against its ``original``, direction-aware.

One table joins a run's values (``metrics/cells.csv``) with the paired comparisons
(``metrics/comparisons.csv``), and states each difference in the direction that matters:
``effect`` is positive where the manipulation made the model *more* robust-looking (a higher
accuracy, a lower attack success) and negative where it hurt, per the metric registry's
``better``. The report's answer, tables and charts, and the plot stage's change figure, all
read this one table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cliprobe import paths
from cliprobe.metrics.registry import describe, family_order, lookup

KEYS = ["model", "dataset", "manipulation", "metric"]
#: Columns of :func:`change_table`.
CHANGE_COLUMNS = [*KEYS, "value", "ci_low", "ci_high", "n_images", "original",
                  "difference", "difference_low", "difference_high", "p_value", "mcnemar_p",
                  "significant", "paired", "effect"]


def direction(metric: str) -> float:
    """+1 where higher is better, −1 where lower is better, NaN where neither (or unknown)."""
    info = lookup(metric)
    if info is None or info.better == "none":
        return math.nan
    return 1.0 if info.better == "higher" else -1.0


def change_table(cells: pd.DataFrame, comparisons: pd.DataFrame | None) -> pd.DataFrame:
    """One row per manipulated cell and metric that ``original`` also has.

    ``difference`` (cell − original) and its interval and p-values come from the paired
    comparison on the same images where there is one (``paired`` True); otherwise the
    difference of the two values, with no interval and ``significant`` False. ``effect`` is
    ``difference × direction(metric)``.
    """
    base = cells[cells["manipulation"] == paths.CLEAN][["model", "dataset", "metric", "value"]]
    other = cells[cells["manipulation"] != paths.CLEAN]
    table = other.merge(base.rename(columns={"value": "original"}),
                        on=["model", "dataset", "metric"], how="inner")
    if comparisons is not None and len(comparisons):
        paired = comparisons[[*KEYS, "difference", "ci_low", "ci_high", "p_value", "mcnemar_p",
                              "significant"]].rename(columns={"ci_low": "difference_low",
                                                              "ci_high": "difference_high"})
        table = table.merge(paired, on=KEYS, how="left")
    else:
        table = table.assign(difference=np.nan, difference_low=np.nan, difference_high=np.nan,
                             p_value=np.nan, mcnemar_p=np.nan, significant=np.nan)
    table["paired"] = table["difference"].notna()
    table["difference"] = table["difference"].fillna(table["value"] - table["original"])
    table["significant"] = table["significant"].astype(str).str.lower().eq("true")
    table["effect"] = table["difference"] * table["metric"].map(direction)
    return table.reindex(columns=CHANGE_COLUMNS).reset_index(drop=True)


#: The change figure shows every manipulation up to this many columns; beyond, only the
#: non-corruption ones (corruption sweeps have their severity curves).
MAX_CHANGE_COLUMNS = 20


def change_columns(manipulations: list[str], corruptions: set[str]) -> list[str]:
    """The change figure's columns: ``manipulations`` (grid order, no ``original``), without
    the ImageNet-C cells in ``corruptions`` when there are more than
    :data:`MAX_CHANGE_COLUMNS`."""
    if len(manipulations) <= MAX_CHANGE_COLUMNS:
        return list(manipulations)
    return [m for m in manipulations if m not in corruptions]


def _finite(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def change_cells(changes: pd.DataFrame) -> pd.DataFrame:
    """The change figure's cells (one model × dataset): one row per metric with a better
    direction and manipulation, in the metric's stated unit, rows in registry order.

    Columns: ``metric`` (label), ``name``, ``manipulation``, ``effect`` (scaled: points for
    shares; + = better), ``text`` (signed difference, ``*`` when significant),
    ``difference`` (with its paired interval), ``levels`` (original → cell), ``test``,
    ``better``.
    """
    rows = []
    for row in changes.itertuples():
        info = describe(row.metric)
        if info.better == "none" or not _finite(row.effect):
            continue
        unit = info.unit
        interval = (f" [{unit.signed(row.difference_low, False)}, "
                    f"{unit.signed(row.difference_high, False)}]" if row.paired else "")
        test = ("significant" if row.significant else "not significant") if row.paired \
            else "no paired test"
        if _finite(row.p_value):
            test += f", p = {row.p_value:.3g}"
        if _finite(row.mcnemar_p):
            test += f", McNemar p = {row.mcnemar_p:.3g}"
        rows.append({"metric": info.label, "name": row.metric,
                     "manipulation": row.manipulation, "effect": row.effect * unit.scale,
                     "text": unit.signed(row.difference, unit=False)
                     + ("*" if row.significant else ""),
                     "difference": unit.signed(row.difference) + interval,
                     "levels": f"{unit.value(row.original)} → {unit.value(row.value)}",
                     "test": test, "better": info.better_text,
                     "_order": family_order(row.metric)})
    columns = ["metric", "name", "manipulation", "effect", "text", "difference", "levels",
               "test", "better"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return (pd.DataFrame(rows).sort_values("_order", kind="stable")
            .drop(columns="_order").reset_index(drop=True)[columns])
