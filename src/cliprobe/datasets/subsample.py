"""Seed 001's subsampling: keep N classes and/or M images per class, chosen with a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cliprobe.config.schema import SubsampleConfig


def subsample(rows: pd.DataFrame, config: SubsampleConfig) -> pd.DataFrame:
    """Rows of ``N`` random classes with at most ``M`` random images each (order: image_id).

    The choice depends only on the seed and the set of (image_id, label) pairs, never on the
    order rows arrive in.
    """
    frame = rows.sort_values("image_id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(config.seed)
    classes = sorted(frame["label"].unique())
    if config.classes is not None and config.classes < len(classes):
        keep = rng.choice(len(classes), size=config.classes, replace=False)
        chosen = {classes[i] for i in keep}
        frame = frame[frame["label"].isin(chosen)]
    if config.per_class is not None:
        parts = []
        for _, group in frame.groupby("label", sort=True):
            if len(group) > config.per_class:
                picks = np.sort(rng.choice(len(group), size=config.per_class, replace=False))
                group = group.iloc[picks]
            parts.append(group)
        frame = pd.concat(parts) if parts else frame.iloc[0:0]
    return frame.sort_values("image_id", kind="stable").reset_index(drop=True)
