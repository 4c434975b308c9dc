"""ImageNet-C decodes once per dataset: the same bytes as decoding in every cell, one decode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bad_inputs import write_photos
from cliprobe.datasets.manifest import build_manifest
from cliprobe.embedding import constructed, reader
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import ManipulationFailed
from cliprobe.embedding.runner import embed_manifest
from cliprobe.manipulations import get
from cliprobe.manipulations.corruptions import CorruptionParams, corrupt, registry_name
from cliprobe.manipulations.registry import Construction

CELLS = [("fog", 3), ("contrast", 2), ("jpeg_compression", 5), ("impulse_noise", 4)]


@pytest.fixture()
def images(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """5 real photos (PNG and JPEG, several sizes) and a truncated JPEG."""
    root = tmp_path / "images"
    photos = write_photos(root, 5)
    truncated = root / "broken.jpg"
    Image.new("RGB", (300, 200), "red").save(truncated, quality=90)
    truncated.write_bytes(truncated.read_bytes()[:400])
    rows = [{"image_id": name, "path": name, "label": label} for name, label in photos]
    rows.append({"image_id": "broken.jpg", "path": "broken.jpg", "label": "broken"})
    return root, build_manifest(pd.DataFrame(rows))


def _embed(smoke_model: Any, root: Path, manifest: pd.DataFrame, corruption: str,
           severity: int, output: Path, cache: Path | None) -> bytes:
    spec = get(registry_name(corruption))
    params = CorruptionParams(severity=severity)
    cell = f"{corruption}_s{severity}"
    embed_manifest(
        manifest, image_root=root,
        transform=reader.manipulation_step(spec, params, cell, 0),
        preprocess=smoke_model.preprocess,
        encode=make_image_encoder(smoke_model.model, "cpu", "fp32"),
        embed_dim=smoke_model.embed_dim, output=output, partial_root=output.parent / "partial",
        metadata={"cell": cell}, batch_size=4, num_workers=0, chunk_size=3,
        construction=spec.construction_for(params) if cache else None,
        construction_cache=cache,
    )
    return output.read_bytes()


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    decoded: list[str] = []

    def counting(path: Any, crop_box: Any = None, draft: int | None = None) -> Image.Image:
        decoded.append(str(path))
        return original(path, crop_box, draft)

    original = reader.load_rgb
    monkeypatch.setattr(reader, "load_rgb", counting)
    monkeypatch.setattr(constructed, "load_rgb", counting)
    return decoded


def test_cells_share_one_decode_and_get_the_same_bytes(
        smoke_model: Any, images: tuple[Path, pd.DataFrame], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, manifest = images
    decoded = _count_decodes(monkeypatch)
    every_cell = {c: _embed(smoke_model, root, manifest, c, s, tmp_path / f"old-{c}.parquet",
                            None) for c, s in CELLS}
    assert len(decoded) == len(CELLS) * len(manifest)  # the old way: every cell decodes
    decoded.clear()
    cache = tmp_path / "cache"
    once = {c: _embed(smoke_model, root, manifest, c, s, tmp_path / f"new-{c}.parquet", cache)
            for c, s in CELLS}
    assert len(decoded) == len(manifest)  # one decode per image for all the cells
    assert once == every_cell  # byte-identical Parquet files (vectors, skips, metadata)


def test_a_changed_photo_is_constructed_again(smoke_model: Any,
                                              images: tuple[Path, pd.DataFrame],
                                              tmp_path: Path) -> None:
    root, manifest = images
    cache = tmp_path / "cache"
    _embed(smoke_model, root, manifest, "fog", 3, tmp_path / "a.parquet", cache)
    (first,) = (cache / "imagenet_c-v1").glob("*.npy")
    photo = root / manifest["path"].iloc[0]
    Image.open(root / manifest["path"].iloc[1]).convert("RGB").save(photo.with_suffix(".tmp.png"))
    photo.with_suffix(".tmp.png").replace(photo)  # same name, other pixels
    fresh = _embed(smoke_model, root, manifest, "fog", 3, tmp_path / "b.parquet", None)
    cached = _embed(smoke_model, root, manifest, "fog", 3, tmp_path / "c.parquet", cache)
    assert cached == fresh
    assert [p.name for p in (cache / "imagenet_c-v1").glob("*.npy")] != [first.name]
    assert len(list((cache / "imagenet_c-v1").glob("*.npy"))) == 1  # the stale array is gone


def test_the_construction_step_is_what_corrupt_does_first() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8))
    params = CorruptionParams(severity=2)
    spec = get(registry_name("pixelate"))
    step = spec.construction_for(params)
    assert step is not None and step.apply(image).size == step.size
    np.random.seed(1)
    whole = corrupt(image, "pixelate", params)
    np.random.seed(1)
    split = spec(step.apply(image), params, rng, context=None, constructed=True).image
    assert np.array_equal(np.asarray(whole), np.asarray(split))
    assert spec.construction_for(CorruptionParams(severity=2,
                                                  construction="full_resolution")) is None


def test_draft_decoding_gets_its_own_cache(images: tuple[Path, pd.DataFrame]) -> None:
    root, manifest = images
    step = get(registry_name("fog")).construction_for(CorruptionParams(severity=3))
    assert step is not None
    exact = constructed.cache_key(manifest, root, step)
    assert constructed.cache_key(manifest, root, step, draft=256) != exact
    assert constructed.cache_key(manifest, root, step) == exact


def test_the_key_follows_the_manifests_digests(images: tuple[Path, pd.DataFrame]) -> None:
    root, manifest = images
    step = get(registry_name("fog")).construction_for(CorruptionParams(severity=3))
    assert step is not None
    digests = manifest.assign(sha256=[f"{i:064x}" for i in range(len(manifest))])
    key = constructed.cache_key(digests, root, step)
    photo = root / manifest["path"].iloc[0]
    os.utime(photo, (1, 1))  # touched, same bytes: the fetch stage's digest has not changed
    assert constructed.cache_key(digests, root, step) == key
    other = digests.assign(sha256=["f" * 64, *digests["sha256"].iloc[1:]])
    assert constructed.cache_key(other, root, step) != key


def test_a_construction_failing_on_a_valid_image_stops_the_stage(
        images: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root, manifest = images

    def broken(image: Image.Image) -> Image.Image:
        raise RuntimeError("a bug in the construction")

    step = Construction("broken-v1", broken, size=(8, 8))
    with pytest.raises(ManipulationFailed, match=r"broken-v1 failed on .*a bug in the constr"):
        constructed.constructed_images(manifest, root, step, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing half-built is kept


def test_query_boxes_are_cut_before_the_construction_and_key_the_cache(
        images: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """Revisited Oxford / Paris queries are cut to their box before anything else, in a cell;
    the shared array must hold the same pixels, and a box change must build a new array."""
    from cliprobe.images import load_rgb
    from cliprobe.manipulations.corruptions import CLEAN_FUNCTION, ConstructionParams

    root, manifest = images
    boxed = manifest.assign(query_box=["[3, 4, 60, 50]", *[None] * (len(manifest) - 1)])
    clean = get(CLEAN_FUNCTION)
    params = ConstructionParams()
    step = clean.construction_for(params)  # imagenet_c_clean decodes once too
    assert step is not None
    assert constructed.cache_key(boxed, root, step) != constructed.cache_key(manifest, root, step)
    built = constructed.constructed_images(boxed, root, step, tmp_path / "cache")
    first = root / str(boxed["path"].iloc[0])
    expected = clean(load_rgb(first, [3, 4, 60, 50]), params, np.random.default_rng(0),
                     context=None).image
    shared = clean(built.image(0), params, np.random.default_rng(0), context=None,
                   constructed=True).image
    assert np.array_equal(np.asarray(shared), np.asarray(expected))
