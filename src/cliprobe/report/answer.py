"""The answer a reader comes for: how robust is model M on dataset D under manipulation T?

Per model × dataset, the baseline (the ``original`` cell's headline metrics) and, for every
manipulation, the change of those metrics against ``original`` with its paired interval and
significance, ordered by effect (the largest significant harm to a headline metric first, then
by the first headline metric's change). Cells that wrote a word (typographic attacks) also
carry the attack's own numbers. All plain data: the template turns it into words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.metrics.registry import ATTACK_HEADLINE, HEADLINE, MetricInfo, describe

#: At most this many headline metrics per manipulation.
MAX_HEADLINE_METRICS = 3
#: Manipulations listed before the rest fold under "more" (attack cells are always listed).
SHOWN_CELLS = 8


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its interval (one cell)."""

    metric: MetricInfo
    value: float
    ci_low: float
    ci_high: float
    n_images: int

    @property
    def text(self) -> str:
        """``75.0% [70.1, 79.3]``."""
        unit = self.metric.unit
        return f"{unit.value(self.value)} [{unit.number(self.ci_low)}, {unit.number(self.ci_high)}]"


@dataclass(frozen=True)
class Change:
    """One metric of one manipulation against ``original`` (a :mod:`~cliprobe.metrics.changes`
    row)."""

    metric: MetricInfo
    original: float
    value: float
    difference: float
    low: float
    high: float
    p_value: float
    significant: bool
    paired: bool
    effect: float

    @property
    def difference_text(self) -> str:
        """``−12.3 pt [−16.0, −8.1]`` (no interval when the cells were not paired)."""
        unit = self.metric.unit
        text = unit.signed(self.difference)
        if self.paired and not (math.isnan(self.low) or math.isnan(self.high)):
            text += f" [{unit.signed(self.low, False)}, {unit.signed(self.high, False)}]"
        return text

    @property
    def levels_text(self) -> str:
        """``75.0% → 62.7%``."""
        unit = self.metric.unit
        return f"{unit.value(self.original)} → {unit.value(self.value)}"

    @property
    def unchanged(self) -> bool:
        """True when the difference and its interval are all zero at the shown precision."""
        unit = self.metric.unit
        bounds = [v for v in (self.difference, self.low, self.high) if not math.isnan(v)]
        return all(abs(v * unit.scale) < 0.5 * 10 ** -unit.decimals for v in bounds)

    @property
    def verdict(self) -> str:
        """'significant', 'not significant', 'unchanged' or 'no paired test'."""
        if not self.paired:
            return "no paired test"
        if self.unchanged and not self.significant:
            return "unchanged"
        return "significant" if self.significant else "not significant"

    @property
    def detail(self) -> str:
        """The levels and the p-value, for a tooltip: ``75.0% → 62.7%, paired p = 0.002``."""
        text = self.levels_text
        if self.paired and not math.isnan(self.p_value):
            p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3g}"
            text += f", paired bootstrap {p}"
        return text

    @property
    def harm(self) -> float:
        """How much worse, in the metric's stated unit (points for shares); 0 unless the
        change is significant and harmful."""
        if not self.significant or math.isnan(self.effect) or self.effect >= 0:
            return 0.0
        return -self.effect * self.metric.unit.scale

    @property
    def tone(self) -> str:
        """'worse', 'better' or 'same' (significant changes only; by the metric's direction)."""
        if not self.significant or math.isnan(self.effect) or self.effect == 0:
            return "same"
        return "better" if self.effect > 0 else "worse"


@dataclass
class CellAnswer:
    """One manipulation of a model × dataset."""

    manipulation: str
    n_images: int
    changes: list[Change] = field(default_factory=list)
    attack: list[Estimate] = field(default_factory=list)
    gallery: str | None = None  # figure name of its most-fooled gallery

    @property
    def worst(self) -> Change | None:
        """The headline change that hurts most (significant and harmful), if any."""
        hurt = [c for c in self.changes if c.harm > 0]
        return max(hurt, key=lambda c: c.harm) if hurt else None

    @property
    def shown(self) -> list[Change]:
        """The changes in reading order: significant ones first (most harmful first)."""
        return sorted(self.changes, key=lambda c: (not c.significant, -c.harm))

    @property
    def order(self) -> tuple[float, float, str]:
        """Sort key: the most harmful significant change first; then the most negative
        headline change (significant or not); cells without headline metrics last."""
        worst = self.worst
        effects = [c.effect * c.metric.unit.scale for c in self.changes
                   if not math.isnan(c.effect)]
        return (-(worst.harm if worst else 0.0), min(effects) if effects else math.inf,
                self.manipulation)


@dataclass
class PairAnswer:
    """The answer for one model × dataset."""

    model: str
    dataset: str
    n_images: int
    baseline: list[Estimate]
    primary: MetricInfo | None
    cells: list[CellAnswer]
    original_attack: CellAnswer | None = None  # real typographic photos: original has words
    corruption: dict[str, Any] | None = None  # summary.json's corruption_summary entry

    @property
    def anchor(self) -> str:
        return f"{self.model}--{self.dataset}"

    @property
    def most_harmful(self) -> CellAnswer | None:
        """The manipulation whose headline metrics suffer the largest significant harm."""
        hurt = [c for c in self.cells if c.worst is not None]
        return hurt[0] if hurt else None

    @property
    def listed(self) -> tuple[list[CellAnswer], list[CellAnswer]]:
        """(shown, folded): the first :data:`SHOWN_CELLS` manipulations, plus every cell with
        attack numbers, are shown; the rest fold under "more"."""
        shown = [c for i, c in enumerate(self.cells) if i < SHOWN_CELLS or c.attack]
        return shown, [c for c in self.cells if c not in shown]

    @property
    def harmful_count(self) -> int:
        """How many manipulations significantly worsen at least one headline metric."""
        return sum(1 for c in self.cells if c.worst is not None)


def _estimate(row: Any) -> Estimate:
    return Estimate(describe(row.metric), float(row.value), float(row.ci_low),
                    float(row.ci_high), int(row.n_images))


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def headline_metrics(metrics: set[str]) -> list[str]:
    """The first :data:`MAX_HEADLINE_METRICS` of the registry's headline metrics present."""
    return [m for m in HEADLINE if m in metrics][:MAX_HEADLINE_METRICS]


def answer(cells: pd.DataFrame, changes: pd.DataFrame, galleries: dict[tuple[str, str, str], str],
           corruption_summary: dict[str, Any] | None = None) -> list[PairAnswer]:
    """The answer for every model × dataset of a run.

    ``cells``: metrics/cells.csv; ``changes``: :func:`cliprobe.metrics.changes.change_table`;
    ``galleries``: (model, dataset, manipulation) -> the figure name of its gallery.
    """
    answers = []
    for (model, dataset), rows in cells.groupby(["model", "dataset"], sort=False):
        original = rows[rows["manipulation"] == paths.CLEAN]
        defined = original[original["value"].map(_finite)]
        chosen = headline_metrics(set(defined["metric"]))
        by_metric = {r.metric: r for r in defined.itertuples()}
        baseline = [_estimate(by_metric[m]) for m in chosen]
        n_images = int(original["n_images"].max()) if len(original) else 0
        pair_changes = changes[(changes["model"] == model) & (changes["dataset"] == dataset)]
        original_attack = None
        attack = _attack(original)
        if attack:  # real typographic photos: the original cell is the attack
            original_attack = CellAnswer(paths.CLEAN, n_images, attack=attack,
                                         gallery=galleries.get((model, dataset, paths.CLEAN)))
        # ... and a manipulation of them changes its success, stated like any other change
        compared = [*chosen, ATTACK_HEADLINE[0]] if original_attack else chosen
        answers_of_cells = []
        for manipulation in dict.fromkeys(rows["manipulation"]):
            if manipulation == paths.CLEAN:
                continue
            cell_rows = rows[rows["manipulation"] == manipulation]
            cell = CellAnswer(manipulation, int(cell_rows["n_images"].max()),
                              gallery=galleries.get((model, dataset, manipulation)))
            mine = pair_changes[pair_changes["manipulation"] == manipulation]
            mine_by_metric = {r.metric: r for r in mine.itertuples()}
            for metric in compared:
                row = mine_by_metric.get(metric)
                if row is None or not _finite(row.value):
                    continue
                cell.changes.append(Change(
                    describe(metric), float(row.original), float(row.value),
                    float(row.difference), float(row.difference_low),
                    float(row.difference_high), float(row.p_value), bool(row.significant),
                    bool(row.paired), float(row.effect)))
            if original_attack is None:
                cell.attack = _attack(cell_rows)
            answers_of_cells.append(cell)
        answers_of_cells.sort(key=lambda c: c.order)
        corruption = ((corruption_summary or {}).get(model) or {}).get(dataset)
        answers.append(PairAnswer(model, dataset, n_images, baseline,
                                  describe(chosen[0]) if chosen else None, answers_of_cells,
                                  original_attack, corruption))
    return answers


def _attack(rows: pd.DataFrame) -> list[Estimate]:
    """The attack metrics of one cell, in :data:`ATTACK_HEADLINE` order (empty without a
    written word)."""
    by_metric = {r.metric: r for r in rows.itertuples() if _finite(r.value)}
    return [_estimate(by_metric[m]) for m in ATTACK_HEADLINE if m in by_metric]
