"""Per-image context reaches manipulations, and their recorded info reaches the embeddings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from cliprobe.datasets.manifest import build_manifest
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.runner import embed_manifest
from cliprobe.io.embeddings import read_embeddings
from cliprobe.manipulations import ImageContext, Manipulated


def test_context_in_info_out(smoke_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from skimage import data

    rows = []
    for name, pixels, label in (("a.png", data.chelsea(), "cat"),
                                ("b.png", data.coffee(), "coffee"),
                                ("c.png", data.astronaut(), "astronaut")):
        Image.fromarray(pixels).save(tmp_path / name)
        rows.append({"image_id": name, "path": name, "label": label})
    manifest = build_manifest(pd.DataFrame(rows))

    def write_other_class(image: Image.Image, context: ImageContext) -> Manipulated:
        others = [c for c in context.class_names if c != context.label]
        return Manipulated(image, {"word": others[0], "true": context.label})

    embed_manifest(
        manifest, tmp_path, write_other_class, smoke_model.preprocess,
        make_image_encoder(smoke_model.model, "cpu", "fp32"), smoke_model.embed_dim,
        tmp_path / "out.parquet", tmp_path / "partial", {"test": True},
    )
    table = read_embeddings(tmp_path / "out.parquet")
    infos = {table.image_ids[i]: table.info(i) for i in range(len(table))}
    assert infos == {
        "a.png": {"word": "astronaut", "true": "cat"},
        "b.png": {"word": "astronaut", "true": "coffee"},
        "c.png": {"word": "cat", "true": "astronaut"},
    }
