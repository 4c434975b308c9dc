"""Render :class:`~cliprobe.report.collect.RunData` as one self-contained HTML page.

The page opens on the answer (per model × dataset: what each manipulation does to the main
metrics, in words and numbers, ordered by effect), then per model × dataset a sortable,
filterable table of every metric and the interactive figures, then the figures across models
and datasets, the other tables, the glossary of the metrics shown and the provenance.
Images are inlined as base64 PNG, the Vega libraries and the page's CSS / JS inline too, so the
file opens anywhere with no network. Sections without data are left out.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cliprobe import paths
from cliprobe.metrics.changes import change_columns
from cliprobe.metrics.registry import HEATMAP_METRICS, describe, family_order, lookup
from cliprobe.report import charts
from cliprobe.report.answer import PairAnswer, answer
from cliprobe.report.assets import static_text, vega_bundle
from cliprobe.report.collect import FIGURE_SECTIONS, MANIPULATION_FAMILIES, RunData
from cliprobe.report.tables import (
    estimate_table,
    inline_code,
    metric_name,
    metric_table,
    plain_table,
)

#: Figure kinds drawn per model × dataset (``<kind><model>_<dataset>...png``).
PAIR_FIGURES = ("gallery_", "class_bars_", "box_", "hist_", "severity_", "corruption_heatmap_",
                "typographic_matrix_", "proximity_", "saliency_", "change_")
#: Figures (and word matrices) of one kind shown per model × dataset before "more".
SHOWN_FIGURES = 3
#: Columns of extra tables that hold metric names (their values get glossary entries).
METRIC_COLUMNS = ("metric", "statistic", "measure")


@dataclass
class Chart:
    """An interactive figure: its Vega-Lite spec and the PNG of the same numbers."""

    title: str
    caption: str
    spec: dict[str, Any]
    png: str | None = None  # file name under plots/figures
    folded: bool = False  # shown under "more" (many charts of one kind)
    id: str = ""  # the page element's id, numbered across the page

    @property
    def spec_json(self) -> Markup:
        """The spec for a ``<script type="application/json">`` element."""
        return Markup(json.dumps(self.spec, separators=(",", ":"), allow_nan=False)
                      .replace("</", "<\\/"))


@dataclass
class Figure:
    """A figure inlined in the page (base64 ``data`` of ``mime`` type)."""

    name: str
    data: str
    mime: str = "image/png"


@dataclass
class PairSection:
    """Everything the page shows for one model × dataset below the answer."""

    answer: PairAnswer
    table: Markup
    charts: list[Chart] = field(default_factory=list)
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    corruption_tables: list[tuple[str, Markup]] = field(default_factory=list)
    word_tables: list[tuple[str, Markup]] = field(default_factory=list)


#: PNGs larger than this (galleries of photos) are shown as JPEG, at full resolution: the page
#: stays light, and the PNG stays on disk for papers and ``dvc plots``.
JPEG_ABOVE_BYTES = 150_000
JPEG_QUALITY = 85


def _inline(path: Path) -> Figure:
    """A figure as the page embeds it: the PNG itself, or a JPEG of it when it is large."""
    content = path.read_bytes()
    if len(content) <= JPEG_ABOVE_BYTES:
        return Figure(path.name, base64.b64encode(content).decode("ascii"))
    from PIL import Image

    with Image.open(io.BytesIO(content)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Figure(path.name, base64.b64encode(buffer.getvalue()).decode("ascii"), "image/jpeg")


def _pair_of(name: str, pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (model, dataset) a per-pair figure belongs to (the longest matching prefix)."""
    best: tuple[str, str] | None = None
    for kind in PAIR_FIGURES:
        if not name.startswith(kind):
            continue
        for model, dataset in pairs:
            stem = f"{kind}{model}_{dataset}"
            if (name.startswith(stem + "_") or name == stem + ".png") and (
                    best is None or len(f"{best[0]}_{best[1]}") < len(f"{model}_{dataset}")):
                best = (model, dataset)
    return best


def _section_of(name: str) -> str:
    return next((title for prefix, title in FIGURE_SECTIONS if name.startswith(prefix)),
                "Other figures")


def _severity_charts(run: RunData, model: str, dataset: str, pngs: set[str]) -> list[Chart]:
    """Per construction: the severity curves and the corruption × severity heatmap."""
    if run.severity is None or run.severity.empty:
        return []
    rows = run.severity[(run.severity["model"] == model) & (run.severity["dataset"] == dataset)]
    found: list[Chart] = []
    for construction, group in rows.groupby("construction", sort=False):
        metric = next((m for m in ("zeroshot_error", "seed001_accuracy", "recall_own_at_1")
                       if m in group and group[m].notna().any()), None)
        if metric is None:
            continue
        suffix = "" if construction == "imagenet_c" else f"_{construction}"
        label = describe(metric).label
        curves = charts.severity_chart(group, metric)
        if curves is not None:
            png = f"severity_{model}_{dataset}{suffix}.png"
            found.append(Chart(
                f"Severity curves ({construction})",
                f"{label} against corruption severity, one line per corruption, with its 95% "
                "interval; click a legend entry to bring one corruption forward, hover a point "
                "for its numbers.", curves, png if png in pngs else None))
        grid = charts.corruption_heatmap(group, metric)
        if grid is not None:
            png = f"corruption_heatmap_{model}_{dataset}{suffix}.png"
            found.append(Chart(
                f"Corruption × severity ({construction})",
                f"{label} of every corruption cell; hover for its interval.", grid,
                png if png in pngs else None))
    return found


def _word_charts(run: RunData, model: str, dataset: str, pngs: set[str]) -> list[Chart]:
    """Per cell with written words: the object × written word matrix."""
    if run.word_pairs is None or run.word_pairs.empty:
        return []
    rows = run.word_pairs[(run.word_pairs["model"] == model)
                          & (run.word_pairs["dataset"] == dataset)]
    found = []
    for manipulation, group in rows.groupby("manipulation", sort=False):
        spec = charts.word_matrix(group)
        if spec is None:
            continue
        png = f"typographic_matrix_{model}_{dataset}_{manipulation}.png"
        found.append(Chart(
            f"Object × written word · {manipulation}",
            "Each object (row) with each written word (column): the colour is the mean "
            "zero-shot probability of the word; hover for p(object), the share predicted as "
            "the word and the number of images.", spec, png if png in pngs else None,
            folded=len(found) >= SHOWN_FIGURES))
    return found


def _corruption_tables(run: RunData, model: str, dataset: str) -> list[tuple[str, Markup]]:
    """CE and relative CE per corruption, then the mCE lines, per construction."""
    entry = (run.corruption_summary.get(model) or {}).get(dataset) or {}
    tables = []
    for construction, report in entry.items():
        rows = [(corruption, {"ce": ce, "relative_ce": (report.get("relative_ce") or {})
                              .get(corruption)})
                for corruption, ce in (report.get("ce") or {}).items()]
        for key, relative in (("mce", "relative_mce"),
                              ("mce_over_present", "relative_mce_over_present")):
            if (report.get(key) or {}).get("value") is not None:
                rows.append((describe(key).label, {"ce": report[key],
                                                   "relative_ce": report.get(relative)}))
        if rows:
            units = {"ce": describe("ce"), "relative_ce": describe("relative_ce")}
            table = estimate_table(f"ce-{model}-{dataset}-{construction}", "corruption", rows,
                                   units)
            tables.append((f"{construction}: {report.get('corruptions_present', '?')} of 15 "
                           f"benchmark corruptions, {report.get('n_images', '?')} images",
                           Markup(table)))
    return tables


#: The words stage's tables stated per model × dataset: (file under metrics/, the columns that
#: name a row, the column that names a metric, the estimate's value column, heading).
WORD_TABLES = (
    ("saliency.csv", ("manipulation", "method", "view"), "statistic", "value",
     "Where the model looks: share of saliency mass in the written word's box"),
    ("proximity.csv", ("manipulation", "outcome"), "measure", "rho",
     "How close the word is to the object: Spearman's rho with the attack's outcome"),
)


def _word_tables(run: RunData, model: str, dataset: str) -> list[tuple[str, Markup]]:
    """metrics/saliency.csv and metrics/proximity.csv rows of one pair as estimate tables:
    a row per cell (and method / view, or outcome), a column per statistic or measure, each
    in its registry unit with its interval."""
    tables = []
    for file, keys, name_column, value_column, heading in WORD_TABLES:
        frame = run.extra_tables.get(file)
        if frame is None or frame.empty or not {"model", "dataset", *keys} <= set(frame):
            continue
        rows_of = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
        rows_of = rows_of[rows_of[value_column].notna()]
        if rows_of.empty:
            continue
        names = sorted(dict.fromkeys(rows_of[name_column].astype(str)), key=family_order)
        rows = []
        for key, group in rows_of.groupby(list(keys), sort=False):
            estimates = {str(r[name_column]): {"value": r[value_column], "ci_low": r["ci_low"],
                                               "ci_high": r["ci_high"]}
                         for r in group.to_dict("records")}
            rows.append((" · ".join(str(k) for k in key), estimates))
        units = {n: describe(n) for n in names}
        table_id = f"{file.removesuffix('.csv')}-{model}-{dataset}"
        tables.append((heading, Markup(estimate_table(table_id, " · ".join(keys), rows,
                                                      units))))
    return tables


def pair_sections(run: RunData, answers: list[PairAnswer],
                  shown: set[str]) -> tuple[list[PairSection], set[str]]:
    """The per model × dataset sections, and the figure names they (or the answer) show."""
    changes = run.changes
    pngs = {f.name for files in run.figures.values() for f in files}
    used = set(shown)
    sections = []
    chart_count = 0
    for pair in answers:
        model, dataset = pair.model, pair.dataset
        cells = run.cells[(run.cells["model"] == model) & (run.cells["dataset"] == dataset)]
        pair_changes = changes[(changes["model"] == model) & (changes["dataset"] == dataset)]
        names = run.manipulations(model, dataset)
        kinds = [(n, run.families.get((model, dataset, n), "other")) for n in names[1:]]
        columns = [(paths.CLEAN, "reference"),
                   *sorted(kinds, key=lambda c: _group_rank(c[1], names, run, model, dataset))]
        table = Markup(metric_table(f"table-{len(sections)}", cells, pair_changes, columns))
        section = PairSection(pair, table)
        heat = charts.change_heatmap(pair_changes, change_columns(
            [n for n, _ in columns[1:]],
            {n for n, kind in columns if kind == MANIPULATION_FAMILIES["corruptions"]}))
        if heat is not None:
            png = f"change_{model}_{dataset}.png"
            section.charts.append(Chart(
                "Change against original",
                "Every metric with a better direction (rows) under every manipulation "
                "(columns): green = more robust-looking, red = worse, in the metric's unit "
                "(points for shares); * = the paired test on the same images is significant. "
                "Hover a cell for the numbers.", heat, png if png in pngs else None))
        section.charts += (_severity_charts(run, model, dataset, pngs)
                           + _word_charts(run, model, dataset, pngs))
        for chart in section.charts:
            chart.id = f"chart-{chart_count}"
            chart_count += 1
        used |= {c.png for c in section.charts if c.png}
        for files in run.figures.values():
            for path in files:
                if path.name in used or _pair_of(path.name, run.pairs) != (model, dataset):
                    continue
                section.figures.setdefault(_section_of(path.name), []).append(_inline(path))
                used.add(path.name)
        section.corruption_tables = _corruption_tables(run, model, dataset)
        section.word_tables = _word_tables(run, model, dataset)
        sections.append(section)
    return sections, used


def grid_charts(run: RunData, first_id: int) -> tuple[list[Chart], set[str]]:
    """Per model on two datasets or more: a dataset × manipulation grid per heatmap metric it
    has (ImageNet-C cells left to their severity curves), and the models they cover."""
    found: list[Chart] = []
    models: set[str] = set()
    pngs = {f.name for files in run.figures.values() for f in files}
    for model in run.provenance["models"]:
        cells = run.cells[run.cells["model"] == model]
        corruption = {key[2] for key, family in run.families.items()
                      if key[0] == model and family == MANIPULATION_FAMILIES["corruptions"]}
        order = [m for m in dict.fromkeys([paths.CLEAN, *cells["manipulation"]])
                 if m not in corruption]
        for metric in HEATMAP_METRICS:
            spec = charts.grid_heatmap(cells[cells["manipulation"].isin(order)], metric, order)
            if spec is None:
                continue
            png = f"heatmap_{model}.png"
            found.append(Chart(
                f"{model}: {describe(metric).label}",
                "Every dataset (rows) under every manipulation (columns); hover a cell for its "
                "95% interval.", spec, png if png in pngs else None,
                id=f"chart-{first_id + len(found)}"))
            models.add(model)
    return found, models


def _group_rank(group: str, names: list[str], run: RunData, model: str,
                dataset: str) -> int:
    """Column groups in the order their first manipulation appears in the grid."""
    for position, name in enumerate(names):
        if run.families.get((model, dataset, name), "other") == group:
            return position
    return len(names)


def glossary(run: RunData) -> list[Any]:
    """Registry entries of every metric the page shows (cells and extra tables), by family."""
    names = set(run.cells["metric"])
    for frame in run.extra_tables.values():
        for column in METRIC_COLUMNS:
            if column in frame:
                names |= {str(v) for v in frame[column].dropna()}
    names |= {"ce", "relative_ce", "mce", "mce_over_present"} if run.corruption_summary else set()
    known = [n for n in names if lookup(n) is not None]
    return [describe(n) for n in sorted(known, key=lambda n: (family_order(n), n))]


def tree(value: Any) -> Markup:
    """Nested ``<ul>`` of a dict / list (provenance, settings)."""
    if isinstance(value, dict):
        if not value:
            return Markup("<i>none</i>")
        items = "".join(f'<li><span class="k">{html.escape(str(k))}</span>: {tree(v)}</li>'
                        for k, v in value.items())
        return Markup(f'<ul class="tree">{items}</ul>')
    if isinstance(value, list):
        if not value:
            return Markup("<i>none</i>")
        if all(not isinstance(v, dict | list) for v in value):
            return Markup(html.escape(", ".join(str(v) for v in value)))
        return Markup('<ul class="tree">' + "".join(f"<li>{tree(v)}</li>" for v in value)
                      + "</ul>")
    return Markup(html.escape("null" if value is None else str(value)))


def page_environment() -> Environment:
    """Jinja environment of the report's templates (cliprobe/report/static)."""
    environment = Environment(loader=PackageLoader("cliprobe.report", "static"),
                              autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(metric_name=lambda info: Markup(metric_name(info, code=False)),
                               tree=tree)
    environment.filters["code"] = lambda text: Markup(inline_code(str(text)))
    return environment


def page_assets(with_charts: bool) -> dict[str, Markup]:
    """The page's inline CSS and JS, and the Vega bundle when it has charts."""
    return {"css": Markup(static_text("report.css")),
            "js": Markup(static_text("report.js")),
            "vega": Markup(vega_bundle()) if with_charts else Markup("")}


def render(run: RunData, subtitle: str = "") -> str:
    """The report as an HTML string."""
    galleries = {}
    pngs = {f.name: f for files in run.figures.values() for f in files}
    for model, dataset in run.pairs:
        for manipulation in run.manipulations(model, dataset):
            name = f"gallery_{model}_{dataset}_{manipulation}.png"
            if name in pngs:
                galleries[(model, dataset, manipulation)] = name
    answers = answer(run.cells, run.changes, galleries, run.corruption_summary)
    # the answer shows the galleries of cells with written words, right beside their numbers
    answer_figures: dict[str, Figure] = {}
    for pair in answers:
        for cell in [pair.original_attack, *pair.cells]:
            if cell is not None and cell.attack and cell.gallery:
                answer_figures[cell.gallery] = _inline(pngs[cell.gallery])
    sections, used = pair_sections(run, answers, set(answer_figures))
    across = {}
    across_charts, gridded = grid_charts(run, sum(len(s.charts) for s in sections))
    single = {m for m in run.provenance["models"]
              if run.cells[run.cells["model"] == m]["dataset"].nunique() < 2}
    for title, files in run.figures.items():
        # a model's dataset x manipulation heatmap: interactive when it has two datasets or
        # more (its PNG named beside the chart); left out on one dataset, where it says
        # nothing the change chart does not (one row per panel)
        rest = [_inline(p) for p in files if p.name not in used
                and not (p.name.startswith("heatmap_")
                         and p.stem[len("heatmap_"):] in single | gridded)]
        if rest:
            across[title] = rest
    extra = {name: (len(frame), Markup(plain_table(f"extra-{i}", frame)))
             for i, (name, frame) in enumerate(run.extra_tables.items()) if len(frame)}
    settings = {key: run.params[key] for key in ("seed", "retrieval", "stats", "zeroshot",
                                                 "prompts", "saliency", "proximity")
                if key in run.params}
    template = page_environment().get_template("report.html.j2")
    return template.render(
        subtitle=subtitle, random_weights=run.random_weights, provenance=run.provenance,
        settings=settings, answers=answers, answer_figures=answer_figures, sections=sections,
        across=across, across_charts=across_charts, extra_tables=extra, glossary=glossary(run),
        shown_figures=SHOWN_FIGURES,
        has_comparisons=run.comparisons is not None and len(run.comparisons) > 0,
        **page_assets(bool(across_charts) or any(s.charts for s in sections)),
    )
