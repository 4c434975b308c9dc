"""Seed 000's figure, generalised: the images a manipulation fooled most, each shown clean and
manipulated with its top-k zero-shot probabilities as bars ("egg 77% / cat 23%")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from PIL import Image

from cliprobe.io.embeddings import column_to_vectors
from cliprobe.plots import with_random_label

TOP_K = 5
MAX_IMAGES = 6


@dataclass
class FooledImage:
    """One row of the gallery."""

    image_id: str
    label: str
    written_word: str
    clean: Image.Image | None
    manipulated: Image.Image
    clean_top: list[tuple[str, float]]
    manipulated_top: list[tuple[str, float]]
    #: titles of the two images (defaults: the id and true class / "manipulated")
    clean_title: str = ""
    manipulated_title: str = ""


def read_probabilities(cell: Path) -> tuple[pd.DataFrame, list[str]]:
    """A cell's per-image probabilities, ``(N, C)`` as a frame indexed by image id."""
    table = pq.read_table(cell / "probabilities.parquet")
    names = json.loads(table.schema.metadata[b"cliprobe"])["class_names"]
    frame = pd.DataFrame(column_to_vectors(table.column("probabilities")),
                         index=table.column("image_id").to_pylist(), columns=names)
    return frame, names


def most_fooled(clean: pd.DataFrame, manipulated: pd.DataFrame,
                limit: int = MAX_IMAGES) -> pd.DataFrame:
    """Images whose zero-shot answer the manipulation hurt most.

    Flipped images come first (right on the clean image, wrong on the manipulated one; those
    predicted as the written word before the others), then the largest drop in the true
    class's probability. Images without a class (a caption dataset) have no true class: those
    predicted as the written word first, then the largest rise in the rank of the image's best
    caption (image -> text). Inputs are two cells' per_image.parquet tables.
    """
    joined = clean.merge(manipulated, on=["image_id", "label"], suffixes=("_clean", ""))
    joined["drop"] = joined["p_true_clean"] - joined["p_true"]
    if joined["drop"].isna().all() and "best_caption_rank" in joined:
        joined["drop"] = (joined["best_caption_rank"]
                          - joined["best_caption_rank_clean"]).astype(float)
    joined["flipped"] = (joined["zeroshot_correct_clean"] == 1) & (joined["zeroshot_correct"] == 0)
    joined["as_word"] = (joined["written_word"] != "") & (
        joined["zeroshot_predicted"] == joined["written_word"])
    hurt = joined[(joined["drop"] > 0) | joined["flipped"]]
    ordered = hurt.sort_values(["flipped", "as_word", "drop", "image_id"],
                               ascending=[False, False, False, True], kind="stable")
    return ordered.head(limit).reset_index(drop=True)


def most_fooled_photos(per_image: pd.DataFrame, limit: int = MAX_IMAGES) -> pd.DataFrame:
    """Real typographic photos (the ``original`` cell) whose written word fooled most.

    Only photos with a word other than their object's name; those predicted as the word
    first, then wrong ones, then by the probability on the word.
    """
    attacked = per_image[(per_image["written_word"] != "")
                         & (per_image["written_word"] != per_image["label"])].copy()
    attacked["as_word"] = attacked["zeroshot_predicted"] == attacked["written_word"]
    attacked["p_word_sort"] = attacked["p_word"].fillna(-1.0)
    ordered = attacked.sort_values(["as_word", "zeroshot_correct", "p_word_sort", "image_id"],
                                   ascending=[False, True, False, True], kind="stable")
    return ordered.head(limit).reset_index(drop=True)


def _top(row: pd.Series, k: int = TOP_K) -> list[tuple[str, float]]:
    ordered = row.sort_values(ascending=False, kind="stable").head(k)
    return [(str(name), float(p)) for name, p in ordered.items()]


def top_classes(probabilities: pd.DataFrame, image_id: str) -> list[tuple[str, float]]:
    """The top-k (class, probability) of one image."""
    return _top(probabilities.loc[image_id])


def _bars(axes: plt.Axes, top: list[tuple[str, float]], true_label: str, word: str) -> None:
    names = [name for name, _ in top][::-1]
    values = [p for _, p in top][::-1]
    colours = ["#2a9d4b" if n == true_label else "#d1495b" if n == word else "#8d99ae"
               for n in names]
    axes.barh(range(len(names)), values, color=colours)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlim(0, 1)
    axes.tick_params(axis="x", labelsize=7)
    for y, value in enumerate(values):
        axes.text(min(value + 0.02, 0.8), y, f"{value:.0%}", va="center", fontsize=7)


def gallery_figure(items: list[FooledImage], title: str, random: bool) -> Figure:
    """Rows of [clean image, its bars, manipulated image, its bars]; green bar = the true
    class, red = the written word."""
    rows = max(1, len(items))
    figure, axes = plt.subplots(rows, 4, figsize=(12, 2.3 * rows),
                                gridspec_kw={"width_ratios": [1, 1.2, 1, 1.2]}, squeeze=False)
    for row, item in zip(axes, items, strict=False):
        if item.clean is not None:
            row[0].imshow(item.clean)
            _bars(row[1], item.clean_top, item.label, item.written_word)
        else:
            row[0].text(0.5, 0.5, "no reference photo", ha="center", va="center", fontsize=8)
            row[1].axis("off")
        row[0].set_title(item.clean_title or f"{item.image_id}\ntrue: {item.label}", fontsize=8)
        row[2].imshow(item.manipulated)
        written = f" (written: {item.written_word})" if item.written_word else ""
        row[2].set_title(item.manipulated_title or f"manipulated{written}", fontsize=8)
        _bars(row[3], item.manipulated_top, item.label, item.written_word)
        for image_axes in (row[0], row[2]):
            image_axes.axis("off")
    if not items:
        axes[0][0].text(0.5, 0.5, "no image was hurt", ha="center")
        for single in axes[0]:
            single.axis("off")
    heading = with_random_label(title, random)
    figure.suptitle(heading, fontsize=10)
    figure.tight_layout()
    return figure
