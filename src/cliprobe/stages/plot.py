"""Stage plot: seed 001's figures, the heatmap and the ImageNet-C figures, into plots/figures.

Per model × dataset with a manipulated cell, ``change_<model>_<dataset>.png``: every metric with
a better direction under every manipulation (corruption cells only up to 20 columns), coloured
by its change against ``original`` (the report's interactive change chart, as a PNG).

Per model × dataset with classes: ``hist_``, ``box_``, ``class_bars_<model>_<dataset>.png``
(seed 001's per-class figures), and per model ``heatmap_<model>.png``: one dataset ×
manipulation panel per headline metric the cells have (:data:`HEATMAP_METRICS`: seed 001,
zero-shot top-1, image <-> text recall@1, ...). They show ``original`` and the non-corruption
manipulations; ImageNet-C cells (registry ``imagenet_c_*``), when present, get their own figures
from plots/severity.csv instead (95 of them would drown seed 001's):

- ``severity_<model>_<dataset>[_<construction>].png``: metric vs severity, one line per
  corruption, one panel per metric (the CE error, seed 001's score);
- ``corruption_heatmap_<model>_<dataset>[_<construction>].png``: corruption × severity;
- with several models, ``severity_models_<dataset>[_<construction>].png``: one panel per
  corruption, one line per model.

The ``_<construction>`` suffix is added only for constructions other than ``imagenet_c``.

Per non-corruption cell with zero-shot scores, ``gallery_<model>_<dataset>_<manipulation>.png``:
seed 000's figure, the images the manipulation fooled most, clean and manipulated (re-created
with the cell's own manipulation and seed), each with its top-5 probabilities. For a dataset
of real typographic photos also ``gallery_<model>_<dataset>_original.png``: its most fooled
photos, each beside the unlabelled photo of the same object.

Per cell with written words (from plots/word_pairs.csv): ``typographic_matrix_<m>_<d>_<x>.png``
(object x written word, Distill style; small grids only) and ``proximity_<m>_<d>_<x>.png``
(p(word) against text-space cosine and WordNet similarity). Per saliency cell and method:
``saliency_<m>_<d>_<x>_<method>.png``.

Every figure of a random-weight model is titled "RANDOM WEIGHTS: not a finding".
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import manipulation_params
from cliprobe.config.stage_params import StageParams, load_stage_params
from cliprobe.datasets.manifest import class_vocabulary, read_manifest
from cliprobe.embedding.reader import image_contexts, manipulation_step
from cliprobe.errors import exit_on_user_error
from cliprobe.images import ImageSkipped, load_rgb
from cliprobe.io.atomic import atomic_path
from cliprobe.io.saliency import read_maps
from cliprobe.manipulations import get as get_manipulation
from cliprobe.manipulations.corruptions import REGISTRY_PREFIX
from cliprobe.metrics.changes import change_columns, change_table
from cliprobe.metrics.registry import HEATMAP_METRICS
from cliprobe.metrics.summary import ERROR_METRIC, HEADLINE
from cliprobe.plots import corruption, gallery, seed001
from cliprobe.plots import saliency as saliency_plots
from cliprobe.plots import words as words_plots
from cliprobe.plots.changes import change_figure
from cliprobe.stages._common import parser

FIGURES = paths.PLOTS / "figures"


def save(figure: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)


def change_figures(params: StageParams, cells: pd.DataFrame, folder: Path) -> int:
    """``change_<model>_<dataset>.png`` for every pair with a manipulated cell: the PNG twin
    of the report's change chart (same columns: :func:`cliprobe.metrics.changes.
    change_columns`)."""
    comparisons_file = paths.METRICS / "comparisons.csv"
    comparisons = pd.read_csv(comparisons_file) if comparisons_file.is_file() else None
    table = change_table(cells, comparisons)
    columns = change_columns(list(params.grid.manipulation), {
        name for name, entry in params.manipulation.items()
        if entry.function.startswith(REGISTRY_PREFIX)})
    written = 0
    for model in params.grid.model:
        random = bool(cells.loc[cells["model"] == model, "random_weights"].any())
        for dataset in params.grid.dataset:
            rows = table[(table["model"] == model) & (table["dataset"] == dataset)]
            figure = change_figure(rows, columns, f"{model} on {dataset}", random)
            if figure is not None:
                save(figure, folder / f"change_{model}_{dataset}.png")
                written += 1
    return written


def corruption_figures(models: Iterable[str], cells: pd.DataFrame, folder: Path) -> int:
    """Draw the ImageNet-C figures from plots/severity.csv into ``folder``; their count."""
    severity_file = paths.PLOTS / "severity.csv"
    text = {key: str for key in ("model", "dataset", "construction", "corruption")}
    rows = (pd.read_csv(severity_file, dtype=text) if severity_file.is_file()
            else pd.DataFrame())
    if rows.empty:
        return 0
    metrics = tuple(m for m in (ERROR_METRIC, HEADLINE) if m in rows.columns)
    if not metrics:
        return 0
    random_models = set(cells.loc[cells["random_weights"].astype(bool), "model"])
    selected = [m for m in models if m in set(rows["model"])]
    written = 0
    for (dataset, construction), group in rows.groupby(["dataset", "construction"], sort=False):
        suffix = "" if construction == "imagenet_c" else f"_{construction}"
        for model in selected:
            chosen = group[group["model"] == model]
            if chosen.empty:
                continue
            random = model in random_models
            heading = f"{model} on {dataset}: ImageNet-C ({construction})"
            save(corruption.severity_curves(chosen, heading, random, metrics),
                 folder / f"severity_{model}_{dataset}{suffix}.png")
            save(corruption.severity_heatmap(chosen, f"{model} on {dataset}: {metrics[0]}",
                                             random, metrics[0]),
                 folder / f"corruption_heatmap_{model}_{dataset}{suffix}.png")
            written += 2
        present = [m for m in selected if m in set(group["model"])]
        if len(present) > 1:
            random = any(m in random_models for m in present)
            save(corruption.model_curves(group[group["model"].isin(present)],
                                         f"{dataset}: ImageNet-C ({construction}), "
                                         f"{metrics[0]} by model", random, metrics[0]),
                 folder / f"severity_models_{dataset}{suffix}.png")
            written += 1
    return written


def gallery_figures(params: StageParams, order: list[str], cells: pd.DataFrame,
                    folder: Path) -> int:
    """Draw one gallery of the most-fooled images per non-original cell; their count."""
    random_models = set(cells.loc[cells["random_weights"].astype(bool), "model"])
    written = 0
    for dataset in params.grid.dataset:
        manifest_file = paths.manifest_path(dataset)
        if not manifest_file.is_file():
            continue
        manifest, manifest_info = read_manifest(manifest_file)
        path_of = dict(zip(manifest["image_id"], manifest["path"], strict=True))
        # the contexts the embed stage used, so the re-created images are the embedded ones
        context_of = {c.image_id: c for c in image_contexts(
            manifest, class_vocabulary(manifest, manifest_info))}
        real_words = "word_label" in manifest and manifest["word_label"].notna().any()
        for model in params.grid.model:
            clean_dir = paths.cell_dir(model, dataset, paths.CLEAN)
            if not (clean_dir / "probabilities.parquet").is_file():
                continue
            if real_words:  # the photos are the attacks: seed 000's figure of the original
                written += typographic_photo_gallery(model, dataset, manifest,
                                                     model in random_models, folder)
            clean_table = pd.read_parquet(clean_dir / "per_image.parquet")
            clean_probs, _ = gallery.read_probabilities(clean_dir)
            for name in order[1:]:
                cell = paths.cell_dir(model, dataset, name)
                fooled = gallery.most_fooled(clean_table,
                                             pd.read_parquet(cell / "per_image.parquet"))
                entry = params.manipulation[name]
                spec = get_manipulation(entry.function)
                step = manipulation_step(spec, manipulation_params(name, entry.function,
                                                                   entry.params),
                                         name, params.seed)
                probs, _ = gallery.read_probabilities(cell)
                items = []
                for row in fooled.itertuples():
                    try:
                        image = load_rgb(paths.raw_dir(dataset) / path_of[row.image_id])
                    except ImageSkipped:
                        continue
                    context = context_of[row.image_id]
                    items.append(gallery.FooledImage(
                        image_id=row.image_id, label=row.label, written_word=row.written_word,
                        clean=image, manipulated=step(image, context).image,
                        clean_top=gallery.top_classes(clean_probs, row.image_id),
                        manipulated_top=gallery.top_classes(probs, row.image_id)))
                save(gallery.gallery_figure(items, f"{model} on {dataset}: {name}, most fooled",
                                            model in random_models),
                     folder / f"gallery_{model}_{dataset}_{name}.png")
                written += 1
    return written


def typographic_photo_gallery(model: str, dataset: str, manifest: pd.DataFrame,
                              random: bool, folder: Path) -> int:
    """Seed 000's figure for real typographic photos: the ``original`` cell's most fooled
    photos, each beside the unlabelled photo of the same object, with top-5 bars."""
    cell = paths.cell_dir(model, dataset, paths.CLEAN)
    per_image = pd.read_parquet(cell / "per_image.parquet")
    fooled = gallery.most_fooled_photos(per_image)
    if fooled.empty:
        return 0
    probs, _ = gallery.read_probabilities(cell)
    path_of = dict(zip(manifest["image_id"], manifest["path"], strict=True))
    blank_of: dict[str, str] = {}
    if "condition" in manifest:
        for row in manifest[manifest["condition"] == "clean"].itertuples():
            blank_of.setdefault(str(row.label), str(row.image_id))
    items = []
    for row in fooled.itertuples():
        try:
            photo = load_rgb(paths.raw_dir(dataset) / path_of[row.image_id])
            blank_id = blank_of.get(row.label)
            blank = (load_rgb(paths.raw_dir(dataset) / path_of[blank_id])
                     if blank_id in probs.index else None)
        except ImageSkipped:
            continue
        items.append(gallery.FooledImage(
            image_id=row.image_id, label=row.label, written_word=row.written_word,
            clean=blank, manipulated=photo,
            clean_top=gallery.top_classes(probs, blank_id) if blank is not None else [],
            manipulated_top=gallery.top_classes(probs, row.image_id),
            clean_title=(f"{blank_id}\nno label (true: {row.label})" if blank is not None
                         else f"true: {row.label}"),
            manipulated_title=f"{row.image_id}\nwritten: {row.written_word}"))
    save(gallery.gallery_figure(items, f"{model} on {dataset}: real typographic photos "
                                       "(original cell), most fooled", random),
         folder / f"gallery_{model}_{dataset}_{paths.CLEAN}.png")
    return 1


def word_figures(params: StageParams, cells: pd.DataFrame, folder: Path) -> int:
    """Per cell with written words: the object x word matrix and the proximity figure."""
    pairs_file, proximity_file = paths.PLOTS / "word_pairs.csv", paths.METRICS / "proximity.csv"
    if not pairs_file.is_file():
        return 0
    text = {"model": str, "dataset": str, "manipulation": str, "object": str, "word": str}
    pairs = pd.read_csv(pairs_file, dtype=text, keep_default_na=False,
                        na_values=[""]).dropna(subset=["object", "word"])
    correlations = (pd.read_csv(proximity_file, dtype=text) if proximity_file.is_file()
                    else pd.DataFrame(columns=["model", "dataset", "manipulation"]))
    random_models = set(cells.loc[cells["random_weights"].astype(bool), "model"])
    written = 0
    for (model, dataset, cell), group in pairs.groupby(["model", "dataset", "manipulation"],
                                                       sort=False):
        if model not in params.grid.model or dataset not in params.grid.dataset:
            continue
        random = model in random_models
        name = f"{model}_{dataset}_{cell}"
        if words_plots.fits_a_matrix(group):
            save(words_plots.object_word_matrix(group, f"{model} on {dataset}: {cell}, object "
                                                       "x written word", random),
                 folder / f"typographic_matrix_{name}.png")
            written += 1
        mine = correlations[(correlations["model"] == model)
                            & (correlations["dataset"] == dataset)
                            & (correlations["manipulation"] == cell)]
        save(words_plots.proximity_figure(group, mine, f"{model} on {dataset}: {cell}, "
                                                       "p(written word) vs proximity", random),
             folder / f"proximity_{name}.png")
        written += 1
    return written


def saliency_figures(params: StageParams, cells: pd.DataFrame, folder: Path) -> int:
    """One figure per saliency cell and method (cells listed in ``saliency.cells``)."""
    random_models = set(cells.loc[cells["random_weights"].astype(bool), "model"])
    written = 0
    for model in params.grid.model:
        for dataset in params.grid.dataset:
            for name in params.saliency.cells:
                where = paths.saliency_dir(model, dataset, name)
                if not (where / "maps.npz").is_file():
                    continue
                cell_maps = read_maps(where / "maps.npz")
                per_image_file = paths.cell_dir(model, dataset, name) / "per_image.parquet"
                per_image = (pd.read_parquet(per_image_file) if per_image_file.is_file()
                             else None)
                mass = pd.read_parquet(where / "mass.parquet")
                order = saliency_plots.order_most_fooled(cell_maps, per_image)
                for method in cell_maps.maps:
                    save(saliency_plots.saliency_figure(
                        cell_maps, method, order, f"{model} on {dataset}: {name}, where the "
                        "model looks", model in random_models, mass),
                         folder / f"saliency_{model}_{dataset}_{name}_{method}.png")
                    written += 1
    return written


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    params = load_stage_params("plot", args.params)
    order = [paths.CLEAN, *(name for name in params.grid.manipulation  # the grid's order
                            if not params.manipulation[name].function.startswith(
                                REGISTRY_PREFIX))]
    cells = pd.read_csv(paths.METRICS / "cells.csv")
    per_class = pd.read_csv(paths.PLOTS / "per_class.csv", dtype={"class": str})
    staging = FIGURES.with_name(".figures.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    written = 0
    for model in params.grid.model:
        model_cells = cells[cells["model"] == model]
        random = bool(model_cells["random_weights"].any())
        for dataset in params.grid.dataset:
            rows = per_class[(per_class["model"] == model) & (per_class["dataset"] == dataset)]
            if rows.empty:  # images without classes (a caption dataset): no per-class figure
                continue
            title = f"{model} on {dataset}"
            for kind, draw in (("hist", seed001.histogram), ("box", seed001.box_plot),
                               ("class_bars", seed001.class_bars)):
                save(draw(rows, order, title, random), staging / f"{kind}_{model}_{dataset}.png")
                written += 1
        matrices = {}
        for metric in HEATMAP_METRICS:
            head = model_cells[model_cells["metric"] == metric]
            if head.empty:
                continue
            matrix = head.pivot(index="dataset", columns="manipulation", values="value")
            matrices[metric] = matrix.reindex(index=list(params.grid.dataset), columns=order)
        save(seed001.heatmaps(matrices, f"{model}: headline metrics", random),
             staging / f"heatmap_{model}.png")
        written += 1
    written += change_figures(params, cells, staging)
    written += corruption_figures(params.grid.model, cells, staging)
    written += gallery_figures(params, order, cells, staging)
    written += word_figures(params, cells, staging)
    written += saliency_figures(params, cells, staging)
    shutil.rmtree(FIGURES, ignore_errors=True)
    staging.rename(FIGURES)
    print(f"plot: {written} figures -> {FIGURES}", file=sys.stderr)


if __name__ == "__main__":
    main()
