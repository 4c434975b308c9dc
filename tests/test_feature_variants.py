"""Feature variants through the embedding runner: pooled features, their width, unit norms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cliprobe.datasets.manifest import build_manifest
from cliprobe.embedding.encoder import make_image_encoder, output_dim
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import embed_manifest
from cliprobe.io.embeddings import read_embeddings
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams


@pytest.mark.parametrize("variant", ["mac", "rmac", "multipatch"])
def test_variant_embeddings(smoke_model, tmp_path: Path, variant: str) -> None:  # type: ignore[no-untyped-def]
    from skimage import data

    rows = []
    for name, pixels in (("a.png", data.chelsea()), ("b.png", data.coffee())):
        Image.fromarray(pixels).save(tmp_path / name)
        rows.append({"image_id": name, "path": name, "label": name[0]})
    params = {"rmac": {"scales": 2}, "multipatch": {"overlap": 0.4}}.get(variant, {})
    encode = make_image_encoder(smoke_model.model, "cpu", "fp32", variant, params)
    dim = output_dim(encode, smoke_model.preprocess)
    embed_manifest(build_manifest(pd.DataFrame(rows)), tmp_path,
                   manipulation_transform(get("identity"), NoParams(), "original", 0),
                   smoke_model.preprocess, encode, dim, tmp_path / "out.parquet",
                   tmp_path / "partial", {"features": variant})
    table = read_embeddings(tmp_path / "out.parquet")
    assert table.vectors.shape == (2, dim)
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, rtol=1e-5)
    globals_ = make_image_encoder(smoke_model.model, "cpu", "fp32")
    batch = smoke_model.preprocess(Image.open(tmp_path / "a.png").convert("RGB")).unsqueeze(0)
    assert not np.allclose(globals_(batch)[0][: min(dim, 64)], table.vectors[0][: min(dim, 64)])
