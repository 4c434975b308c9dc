"""embed_manifest end to end with the smoke model: real photos mixed with the bad-input corpus."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bad_inputs import Case, write_corpus, write_photos
from cliprobe.datasets.manifest import build_manifest
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import EmbedReport, embed_manifest
from cliprobe.errors import DataError
from cliprobe.io.embeddings import read_embeddings, read_metadata
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams

METADATA = {"model": "smoke", "dataset": "bad-input-mix", "manipulation": "original"}

#: Largest |batch_size=1 - batch_size=7| element difference allowed. Measured: 1.341e-07
#: (torch 2.14.1 CPU, smoke model, 2 cores; same value on repeated runs): float32 rounding of
#: batched matmuls. The embeddings are unit vectors, so that is a relative error too.
BATCH_SIZE_TOLERANCE = 1e-5


@dataclass
class Dataset:
    """Images on disk and their manifest."""

    root: Path
    manifest: pd.DataFrame
    bad: list[Case]
    n_good: int


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """6 real photos + every bad-input case, in one manifest (sorted by image_id)."""
    root = tmp_path_factory.mktemp("images")
    photos = write_photos(root / "good", 6)
    bad = write_corpus(root / "bad")
    rows = [{"image_id": f"good/{name}", "path": f"good/{name}", "label": label}
            for name, label in photos]
    rows += [{"image_id": case.image_id, "path": f"bad/{case.manifest_path}", "label": "bad"}
             for case in bad]
    frame = pd.DataFrame(rows, dtype=object)
    # pandas 3's default (Arrow) strings cannot hold the surrogate-escaped non-UTF-8 name, nor
    # can a Parquet manifest: the fetch stage renames such files (sources._safe_name). An
    # object column still lets this test hand the raw name to the reader.
    frame["image_id"] = frame["image_id"].astype("str")
    frame["label"] = frame["label"].astype("str")
    return Dataset(root, build_manifest(frame), bad, len(photos))


def run(smoke_model: Any, root: Path, manifest: pd.DataFrame, output: Path, partial: Path,
        batch_size: int = 7, chunk_size: int = 8, encode: Any = None) -> EmbedReport:
    """Embed ``manifest`` with the smoke model and the identity manipulation."""
    return embed_manifest(
        manifest,
        image_root=root,
        transform=manipulation_transform(get("identity"), NoParams(), "original", 0),
        preprocess=smoke_model.preprocess,
        encode=encode or make_image_encoder(smoke_model.model, "cpu",
                                            smoke_model.config.precision),
        embed_dim=smoke_model.embed_dim,
        output=output,
        partial_root=partial,
        metadata=METADATA,
        batch_size=batch_size,
        num_workers=0,
        chunk_size=chunk_size,
        description="test",
    )


def sha256(path: Path) -> str:
    """Hex digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mixed(
    dataset: Dataset, smoke_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EmbedReport, Path]:
    """One run over the mixed manifest (batch size 7, chunks of 8)."""
    out = tmp_path_factory.mktemp("out")
    report = run(smoke_model, dataset.root, dataset.manifest, out / "emb.parquet",
                 out / "partial")
    return report, out


def test_good_images_embedded_and_bad_ones_listed(
    dataset: Dataset, mixed: tuple[EmbedReport, Path]
) -> None:
    report, out = mixed
    manifest = dataset.manifest
    loads = {case.image_id: case.loads for case in dataset.bad}
    expected_ids = [i for i in manifest["image_id"] if loads.get(i, True)]
    expected_skips = {case.image_id: case for case in dataset.bad if not case.loads}

    table = read_embeddings(report.output)
    assert list(table.image_ids) == expected_ids  # manifest order, skipped ones left out
    by_id = manifest.set_index("image_id")
    assert list(table.labels) == list(by_id.loc[expected_ids, "label"])
    assert list(table.class_indices) == list(by_id.loc[expected_ids, "class_index"])
    assert table.vectors.shape == (len(expected_ids), 64)
    assert np.all(np.isfinite(table.vectors))
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-5)

    skipped = table.metadata["skipped"]
    assert [s["image_id"] for s in skipped] == [i for i in manifest["image_id"]
                                                if i in expected_skips]
    for entry in skipped:
        assert expected_skips[entry["image_id"]].skip_reason in entry["reason"], entry
        assert str(dataset.root) not in entry["reason"]  # same metadata on every machine
    assert table.metadata["n_images"] == len(table) == report.n_images
    assert table.metadata["n_skipped"] == len(skipped) == report.n_skipped
    assert report.n_images + report.n_skipped == len(manifest)
    assert report.n_images >= dataset.n_good
    assert report.skipped == skipped
    assert {k: table.metadata[k] for k in METADATA} == METADATA
    assert report.resumed_chunks == 0
    assert not any((out / "partial").glob("*/chunk-*")), "partial chunks left behind"


def test_rerun_is_byte_identical(
    dataset: Dataset, mixed: tuple[EmbedReport, Path], smoke_model: Any, tmp_path: Path
) -> None:
    report, _ = mixed
    again = run(smoke_model, dataset.root, dataset.manifest, tmp_path / "emb.parquet",
                tmp_path / "partial")
    assert sha256(again.output) == sha256(report.output)


def test_batch_size_does_not_change_embeddings(
    dataset: Dataset, mixed: tuple[EmbedReport, Path], smoke_model: Any, tmp_path: Path
) -> None:
    report, _ = mixed  # batch size 7
    single = run(smoke_model, dataset.root, dataset.manifest, tmp_path / "emb.parquet",
                 tmp_path / "partial", batch_size=1)
    seven, one = read_embeddings(report.output), read_embeddings(single.output)
    assert list(seven.image_ids) == list(one.image_ids)
    difference = float(np.abs(seven.vectors - one.vectors).max())
    print(f"max |batch 7 - batch 1| = {difference:.3e}")
    assert difference <= BATCH_SIZE_TOLERANCE
    assert read_metadata(single.output) == read_metadata(report.output)


def test_every_image_bad_raises_data_error(
    dataset: Dataset, smoke_model: Any, tmp_path: Path
) -> None:
    bad_only = dataset.manifest[dataset.manifest["label"] == "bad"]
    failing = {case.image_id for case in dataset.bad if not case.loads}
    bad_only = bad_only[bad_only["image_id"].isin(failing)]
    output = tmp_path / "emb.parquet"
    with pytest.raises(DataError) as raised:
        run(smoke_model, dataset.root, bad_only, output, tmp_path / "partial")
    message = str(raised.value)
    assert f"every one of the {len(bad_only)} images failed" in message
    assert "nothing to embed" in message
    first = bad_only["image_id"].iloc[0]
    assert f"{first}: " in message  # names the first failures and their reasons
    assert not output.exists()


def test_empty_manifest_raises_data_error(
    dataset: Dataset, smoke_model: Any, tmp_path: Path
) -> None:
    """Used to fail with FileNotFoundError on the never-written chunk 0."""
    with pytest.raises(DataError, match="lists no images"):
        run(smoke_model, dataset.root, dataset.manifest.iloc[:0], tmp_path / "e.parquet",
            tmp_path / "partial")


class Crash(RuntimeError):
    """Stands in for a run dying after some chunks were written."""


def crash_after(calls: int, encode: Any) -> Any:
    """An encoder that raises :class:`Crash` on its ``calls + 1``-th batch."""
    count = {"n": 0}

    def wrapped(batch: Any) -> np.ndarray:
        count["n"] += 1
        if count["n"] > calls:
            raise Crash
        return encode(batch)

    return wrapped


def test_partial_chunks_only_reused_for_the_same_manifest(
    smoke_model: Any, tmp_path: Path
) -> None:
    """A crashed run's chunks are resumed; after a relabel they are not (stale labels)."""
    root = tmp_path / "images"
    rows = [{"image_id": name, "path": name, "label": label}
            for name, label in write_photos(root, 12, crop=64)]
    manifest = build_manifest(pd.DataFrame(rows))
    encode = make_image_encoder(smoke_model.model, "cpu", smoke_model.config.precision)
    partial, output = tmp_path / "partial", tmp_path / "emb.parquet"
    with pytest.raises(Crash):  # batches of 4, chunks of 4: dies after chunk 0 was written
        run(smoke_model, root, manifest, output, partial, 4, 4, crash_after(1, encode))
    assert len(list(partial.glob("*/chunk-*.parquet"))) == 1 and not output.exists()

    relabelled = manifest.assign(label=manifest["label"].str.upper())
    fresh = run(smoke_model, root, relabelled, tmp_path / "relabelled.parquet", partial, 4, 4)
    assert fresh.resumed_chunks == 0
    assert set(read_embeddings(fresh.output).labels) == set(relabelled["label"])

    resumed = run(smoke_model, root, manifest, output, partial, 4, 4)
    assert resumed.resumed_chunks == 1
    reference = run(smoke_model, root, manifest, tmp_path / "ref.parquet", tmp_path / "p2", 4, 4)
    assert sha256(resumed.output) == sha256(reference.output)


def test_a_photo_replaced_after_a_crash_is_not_taken_from_a_stale_chunk(
    smoke_model: Any, tmp_path: Path
) -> None:
    """Chunks are keyed by the images' content (the manifest's sha256), not only their names:
    a photo replaced under the same name between a crash and the rerun is embedded anew."""
    from PIL import Image

    from cliprobe.datasets.content import sha256_of

    root = tmp_path / "images"
    rows = [{"image_id": name, "path": name, "label": label}
            for name, label in write_photos(root, 8, crop=64)]

    def manifest() -> pd.DataFrame:
        frame = pd.DataFrame(rows)
        return build_manifest(frame.assign(sha256=[sha256_of(root / p) for p in frame["path"]]))

    encode = make_image_encoder(smoke_model.model, "cpu", smoke_model.config.precision)
    partial, output = tmp_path / "partial", tmp_path / "emb.parquet"
    with pytest.raises(Crash):  # chunk 0 (the first 4 images) is written, then the run dies
        run(smoke_model, root, manifest(), output, partial, 4, 4, crash_after(1, encode))
    first = manifest()["path"].iloc[0]
    Image.open(root / first).transpose(Image.Transpose.ROTATE_180).save(root / first)

    rerun = run(smoke_model, root, manifest(), output, partial, 4, 4)
    reference = run(smoke_model, root, manifest(), tmp_path / "ref.parquet", tmp_path / "p2", 4, 4)
    assert rerun.resumed_chunks == 0
    assert sha256(rerun.output) == sha256(reference.output)


def run_with(smoke_model: Any, root: Path, manifest: pd.DataFrame, output: Path,
             transform: Any) -> EmbedReport:
    return embed_manifest(manifest, image_root=root, transform=transform,
                          preprocess=smoke_model.preprocess,
                          encode=make_image_encoder(smoke_model.model, "cpu", "fp32"),
                          embed_dim=smoke_model.embed_dim, output=output,
                          partial_root=output.parent / "partial", metadata=METADATA,
                          batch_size=4, num_workers=0, chunk_size=4,
                          description="smoke/photos/buggy")


def test_a_manipulation_that_raises_fails_the_stage_naming_image_and_manipulation(
    smoke_model: Any, tmp_path: Path
) -> None:
    """A bug in a manipulation is not a smaller n_images: the stage stops and says where."""
    from cliprobe.embedding.reader import ManipulationFailed

    root = tmp_path / "images"
    rows = [{"image_id": name, "path": name, "label": label}
            for name, label in write_photos(root, 6, crop=48)]
    manifest = build_manifest(pd.DataFrame(rows))
    victim = manifest["image_id"].iloc[2]

    def buggy(image: Any, context: Any) -> Any:
        if context.image_id == victim:
            raise ZeroDivisionError("division by zero")
        return image

    output = tmp_path / "emb.parquet"
    with pytest.raises(ManipulationFailed) as raised:
        run_with(smoke_model, root, manifest, output, buggy)
    message = str(raised.value)
    assert "smoke/photos/buggy" in message  # the cell, hence the manipulation
    assert repr(victim) in message
    assert "ZeroDivisionError: division by zero" in message
    assert "test_embedding_runner.py:" in message  # where it was raised
    assert "ManipulationNotApplicable" in message  # the remedy for images it cannot handle
    assert not output.exists()


def test_a_declined_image_is_counted_apart_from_unreadable_ones(
    dataset: Dataset, smoke_model: Any, tmp_path: Path
) -> None:
    from cliprobe.io.embeddings import NOT_APPLICABLE, UNREADABLE
    from cliprobe.manipulations import ManipulationNotApplicable

    manifest = dataset.manifest
    declined = next(i for i in manifest["image_id"] if i.startswith("good/"))

    def picky(image: Any, context: Any) -> Any:
        if context.image_id == declined:
            raise ManipulationNotApplicable("too small for this manipulation")
        return image

    report = run_with(smoke_model, dataset.root, manifest, tmp_path / "emb.parquet", picky)
    kinds = {s["image_id"]: s["kind"] for s in report.skipped}
    reasons = {s["image_id"]: s["reason"] for s in report.skipped}
    assert kinds.pop(declined) == NOT_APPLICABLE
    assert reasons[declined] == "manipulation not applicable: too small for this manipulation"
    unreadable = {case.image_id for case in dataset.bad if not case.loads}
    assert kinds == dict.fromkeys(unreadable, UNREADABLE)
