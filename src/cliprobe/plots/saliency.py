"""Where the model looks: maps for the object and for the word, on the clean and the attacked
image, side by side (one figure per cell and method)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from cliprobe.io.saliency import SaliencyMaps
from cliprobe.plots import with_random_label

MAX_ROWS = 4
VIEW_TITLES = {"reference": "clean", "subject": "attacked"}


def order_most_fooled(cell: SaliencyMaps, per_image: pd.DataFrame | None) -> list[int]:
    """Rows of ``cell``, those predicted as the written word first, then by p(word)."""
    rows = list(range(len(cell.image_ids)))
    if per_image is None or per_image.empty:
        return rows
    table = per_image.set_index("image_id")
    def key(row: int) -> tuple[float, float, str]:
        image_id = cell.image_ids[row]
        if image_id not in table.index:
            return (1.0, 0.0, image_id)
        entry = table.loc[image_id]
        success = entry.get("attack_success", np.nan)
        p_word = entry.get("p_word", np.nan)
        return (-(0.0 if pd.isna(success) else float(success)),
                -(0.0 if pd.isna(p_word) else float(p_word)), image_id)
    return sorted(rows, key=key)


def _box_outline(coverage: np.ndarray, display: int) -> tuple[float, float, float, float] | None:
    rows, cols = np.nonzero(coverage > 0.5)
    if rows.size == 0:
        return None
    scale = display / coverage.shape[0]
    return (cols.min() * scale, rows.min() * scale, (cols.max() + 1 - cols.min()) * scale,
            (rows.max() + 1 - rows.min()) * scale)


def _overlay(saliency: np.ndarray, signed: bool) -> np.ndarray:
    """RGBA overlay whose opacity grows with the map's magnitude (the photo stays visible)."""
    if signed:  # occlusion: red = hiding it lowers the probability, blue = raises it
        limit = float(np.abs(saliency).max()) or 1.0
        scaled = saliency / limit
        rgba = plt.get_cmap("RdBu_r")((scaled + 1) / 2)
        rgba[..., 3] = 0.75 * np.abs(scaled)
    else:  # Grad-CAM, in [0, 1]
        rgba = plt.get_cmap("jet")(np.clip(saliency, 0, 1))
        rgba[..., 3] = 0.7 * np.clip(saliency, 0, 1)
    return rgba


def saliency_figure(cell: SaliencyMaps, method: str, order: list[int], title: str,
                    random: bool, mass: pd.DataFrame | None = None) -> Figure:
    """Rows of [clean + object map, clean + second map, attacked + object, attacked + second]."""
    chosen = order[:MAX_ROWS]
    figure, axes = plt.subplots(max(1, len(chosen)), 4, figsize=(10, 2.7 * max(1, len(chosen))),
                                squeeze=False)
    signed = method == "occlusion"
    display = cell.views.shape[2] if len(cell.views) else 112
    for row_axes, row in zip(axes, chosen, strict=False):
        for column, (view, role) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            ax = row_axes[column]
            ax.axis("off")
            name = str(cell.classes[row][role])
            saliency = cell.maps[method][row, view, role]
            if not name or np.isnan(saliency).all() or not cell.views[row, view].any():
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.imshow(cell.views[row, view])
            big = np.asarray(Image.fromarray(np.nan_to_num(saliency)).resize(
                (display, display), Image.Resampling.BILINEAR))
            ax.imshow(_overlay(big, signed))
            outline = _box_outline(cell.box[row], display)
            if outline is not None and view == 1:
                ax.add_patch(Rectangle(outline[:2], *outline[2:], fill=False, ec="white",
                                       lw=1.2, ls="--"))
            label = "object" if role == 0 else cell.second_roles[row] or "second"
            share = ""
            if mass is not None and not mass.empty:
                hit = mass[(mass["image_id"] == cell.image_ids[row]) & (mass["method"] == method)
                           & (mass["view"] == ("reference", "subject")[view])
                           & (mass["role"] == ("object", "second")[role])]
                if len(hit) and not pd.isna(hit["mass_in_box"].iloc[0]):
                    share = f"\nin box {hit['mass_in_box'].iloc[0]:.0%}"
            prefix = f"{cell.image_ids[row]}\n" if column == 0 else ""
            ax.set_title(f"{prefix}{VIEW_TITLES[('reference', 'subject')[view]]} · {label}: "
                         f"{name}{share}", fontsize=7)
    if not chosen:
        axes[0][0].text(0.5, 0.5, "no image", ha="center")
    settings = cell.meta["methods"].get(method, {})
    detail = (f"layer {settings.get('layer')}" if method == "gradcam" else
              f"window {settings.get('window_px')} px, stride {settings.get('stride_px')} px, "
              f"red = probability drop")
    heading = f"{title}\n{method} ({detail}); dashed: the written word's box"
    figure.suptitle(with_random_label(heading, random), fontsize=9)
    figure.tight_layout()
    return figure
