"""The ``ray`` backend against the ``local`` one, on a local 2-CPU Ray instance.

40 manifest rows (34 real photo crops, 6 broken files) with the smoke model, batches of 4,
chunks of 8. Equal results (ids, order, skipped list, info column, metadata, embeddings within
the batch-size tolerance); a run that resumes a killed local run's chunk, during which a load
task's worker and then the encode actor are SIGKILLed mid-batch, still produces every row
exactly once.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bad_inputs import CASES_BY_NAME, write_corpus, write_photos
from cliprobe.config.schema import ModelConfig
from cliprobe.datasets.manifest import build_manifest
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.runner import EmbedReport, embed_manifest
from cliprobe.errors import DataError
from cliprobe.io.embeddings import EmbeddingTable, read_embeddings
from cliprobe.manipulations import ImageContext, Manipulated
from cliprobe.models import load_model

ray = pytest.importorskip("ray", reason="ray is not importable (pip install 'cliprobe[ray]')",
                         exc_type=ImportError)
ray_backend = pytest.importorskip("cliprobe.embedding.ray_backend")

#: Same bound as test_embedding_runner.BATCH_SIZE_TOLERANCE (batch-size rounding, 1.3e-7).
TOLERANCE = 1e-5
BATCH_SIZE, CHUNK_SIZE = 4, 8
BROKEN = ("truncated_jpeg", "zero_byte_file", "text_file_named_jpg", "missing_file",
          "directory_named_jpg", "sliver_1x20000")
METADATA = {"model": "smoke", "dataset": "ray-test", "manipulation": "tagged"}
SMOKE = ModelConfig(arch="cliprobe-smoke", pretrained=None, random_init_seed=0)
#: A hung worker is SIGKILLed long before this; only reached if the kill failed.
HANG_SECONDS = 240.0  # outlasts every wait below, even on a loaded machine


@dataclass
class Dataset:
    """Images on disk, their manifest and the broken rows' image ids."""

    root: Path
    manifest: pd.DataFrame
    broken: list[str]


@pytest.fixture(scope="module")
def ray_instance() -> Any:
    """A local Ray instance with 2 CPUs; this module's functions travel by value."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """34 photo crops with 6 broken files spread among them (manifest sorted by image_id)."""
    root = tmp_path_factory.mktemp("images")
    rows = [{"image_id": f"{i * 10:03d}_{label}", "path": f"good/{name}", "label": label}
            for i, (name, label) in enumerate(write_photos(root / "good", 34, crop=80))]
    written = write_corpus(root / "bad", tuple(CASES_BY_NAME[name] for name in BROKEN))
    broken = []
    for k, case in enumerate(written):
        image_id = f"{k * 57 + 5:03d}_broken"  # between the photos, in several chunks
        rows.append({"image_id": image_id, "path": f"bad/{case.manifest_path}",
                     "label": "broken"})
        broken.append(image_id)
    manifest = build_manifest(pd.DataFrame(rows))
    assert len(manifest) == 40
    return Dataset(root, manifest, sorted(broken))


def tag_other_class(image: Image.Image, context: ImageContext) -> Manipulated:
    """A context-aware step: records the first other class name (needs the global classes)."""
    others = [c for c in context.class_names if c != context.label]
    return Manipulated(image, {"word": others[0], "image": context.image_id})


def run(backend: str, data: Dataset, folder: Path, manifest: pd.DataFrame | None = None,
        transform: Any = tag_other_class, encode: Any = None, **ray_options: Any
        ) -> EmbedReport:
    """Embed ``data`` with one backend (the smoke model, batches of 4, chunks of 8)."""
    smoke = load_model("smoke", SMOKE, "cpu")
    kwargs: dict[str, Any] = {
        "manifest": data.manifest if manifest is None else manifest,
        "image_root": data.root,
        "transform": transform,
        "preprocess": smoke.preprocess,
        "encode": encode or make_image_encoder(smoke.model, "cpu", "fp32"),
        "embed_dim": smoke.embed_dim,
        "output": folder / "emb.parquet",
        "partial_root": folder / "partial",
        "metadata": METADATA,
        "batch_size": BATCH_SIZE,
        "num_workers": 0,
        "chunk_size": CHUNK_SIZE,
        "description": f"test-{backend}",
    }
    if backend == "local":
        return embed_manifest(**kwargs)
    return ray_backend.embed_manifest_ray(**kwargs, **ray_options)


@pytest.fixture(scope="module")
def local(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> EmbedReport:
    """The reference: the local backend over the dataset."""
    return run("local", dataset, tmp_path_factory.mktemp("local"))


def assert_same(ray_table: EmbeddingTable, local_table: EmbeddingTable) -> float:
    """Equal rows, order, skipped list, info and metadata; return the max vector difference."""
    assert list(ray_table.image_ids) == list(local_table.image_ids)
    assert len(set(ray_table.image_ids)) == len(ray_table.image_ids)
    assert list(ray_table.labels) == list(local_table.labels)
    assert list(ray_table.class_indices) == list(local_table.class_indices)
    assert list(ray_table.infos) == list(local_table.infos)
    assert ray_table.metadata == local_table.metadata
    difference = float(np.abs(ray_table.vectors - local_table.vectors).max())
    assert difference <= TOLERANCE
    return difference


def test_ray_equals_local(ray_instance: Any, dataset: Dataset, local: EmbedReport,
                          tmp_path: Path) -> None:
    """The model built in the actor (encoder_from_model), 4 encode batches per load task."""
    build = functools.partial(load_model, "smoke", SMOKE, "cpu")
    report = run("ray", dataset, tmp_path, encode=ray_backend.encoder_from_model(build),
                 images_per_task=16)
    ray_table, local_table = read_embeddings(report.output), read_embeddings(local.output)
    difference = assert_same(ray_table, local_table)
    assert [s["image_id"] for s in ray_table.metadata["skipped"]] == dataset.broken
    assert report.skipped == local.skipped and report.n_images == local.n_images == 34
    assert ray_table.info(0)["word"] != ray_table.labels[0]  # the classes of all rows reached it
    # same Parquet layout: schema with metadata, one row group per chunk
    ray_file, local_file = pq.ParquetFile(report.output), pq.ParquetFile(local.output)
    assert ray_file.schema_arrow == local_file.schema_arrow
    assert ray_file.schema_arrow.metadata == local_file.schema_arrow.metadata
    assert ray_file.metadata.num_row_groups == local_file.metadata.num_row_groups
    assert not list((tmp_path / "partial").glob("*/chunk-*")), "partial chunks left behind"
    # what the README promises: the same file, byte for byte (same batches, same encoder)
    assert difference == 0.0
    assert report.output.read_bytes() == local.output.read_bytes()
    print(f"byte-identical; ray {report.seconds:.1f} s, local {local.seconds:.1f} s")


# ------------------------------------------------------- workers killed mid-stage, resumed


class Crash(RuntimeError):
    """Stands in for a local run dying after its first chunk."""


def crash_after(calls: int) -> Any:
    """The smoke encoder, raising :class:`Crash` on its ``calls + 1``-th batch."""
    smoke = load_model("smoke", SMOKE, "cpu")
    encode = make_image_encoder(smoke.model, "cpu", "fp32")
    count = {"n": 0}

    def crashing(batch: Any) -> np.ndarray:
        count["n"] += 1
        if count["n"] > calls:
            raise Crash
        return encode(batch)

    return crashing


def hang_once(marker: Path) -> bool:
    """True the first time any process calls this for ``marker`` (which then holds its pid)."""
    try:
        with open(marker, "x") as handle:
            handle.write(str(os.getpid()))
    except FileExistsError:
        return False
    return True


def hanging_step(image: Image.Image, context: ImageContext, marker: Path,
                 image_id: str) -> Manipulated:
    """``tag_other_class``, slowed down; the first attempt at ``image_id`` hangs until killed."""
    if context.image_id == image_id and hang_once(marker):
        time.sleep(HANG_SECONDS)
    time.sleep(0.02)
    return tag_other_class(image, context)


class HangingEncoder:
    """Builds the smoke model's encoder in the actor; its ``hang_at``-th call hangs once."""

    def __init__(self, marker: Path, hang_at: int) -> None:
        self.marker, self.hang_at = marker, hang_at

    def __call__(self) -> Any:
        smoke = load_model("smoke", SMOKE, "cpu")
        encode = make_image_encoder(smoke.model, "cpu", "fp32")
        calls = {"n": 0}

        def hanging_encode(batch: Any) -> np.ndarray:
            calls["n"] += 1
            if calls["n"] == self.hang_at and hang_once(self.marker):
                time.sleep(HANG_SECONDS)
            return encode(batch)

        return hanging_encode


def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms until true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def chunk_count(partial: Path) -> int:
    """Complete chunk files on disk."""
    return len(list(partial.glob("*/chunk-*.parquet")))


def kill_hung(marker: Path, partial: Path, min_chunks: int) -> tuple[int, int]:
    """SIGKILL the Ray worker hung on ``marker`` once ``min_chunks`` chunks are on disk.

    Returns its pid and the number of chunks complete at the kill.
    """
    import psutil

    wait_for(lambda: marker.is_file() and marker.read_text() != "", 150, marker.name)
    pid = int(marker.read_text())
    command = psutil.Process(pid).cmdline()
    assert pid != os.getpid() and command[0].startswith("ray::"), command  # a Ray worker
    wait_for(lambda: chunk_count(partial) >= min_chunks, 120, f"{min_chunks} chunks")
    chunks = chunk_count(partial)
    os.kill(pid, signal.SIGKILL)
    return pid, chunks


def test_killed_workers_lose_and_duplicate_nothing(
    ray_instance: Any, dataset: Dataset, local: EmbedReport, tmp_path: Path
) -> None:
    """Resume a crashed local run under Ray; SIGKILL a load worker, then the encode actor."""
    import psutil

    partial = tmp_path / "partial"
    with pytest.raises(Crash):  # batches of 4, chunks of 8: chunk 0 is written
        run("local", dataset, tmp_path, encode=crash_after(2))
    assert chunk_count(partial) == 1

    ids = [str(i) for i in dataset.manifest["image_id"]]
    hung_image = next(i for i in ids[21:] if i not in dataset.broken)  # chunk 2, 2nd load task
    load_marker, actor_marker = tmp_path / "load.pid", tmp_path / "actor.pid"
    transform = functools.partial(hanging_step, marker=load_marker, image_id=hung_image)
    # encode calls 1-4 are chunks 1-2; the 5th, in chunk 3, hangs
    encode = ray_backend.BuildInWorker(HangingEncoder(actor_marker, hang_at=5))
    outcome: dict[str, Any] = {}

    def embed() -> None:
        try:
            outcome["report"] = run("ray", dataset, tmp_path, transform=transform,
                                    encode=encode, max_retries=2, images_per_task=8)
        except BaseException as error:  # re-raised by the test thread
            outcome["error"] = error

    started = time.monotonic()
    thread = threading.Thread(target=embed, daemon=True)
    thread.start()
    load_pid, chunks_at_load_kill = kill_hung(load_marker, partial, 2)
    actor_pid, chunks_at_actor_kill = kill_hung(actor_marker, partial, 3)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the ray run did not finish after the kills"
    if "error" in outcome:
        raise outcome["error"]
    report: EmbedReport = outcome["report"]

    assert report.resumed_chunks == 1  # the local run's chunk, under the same partial key
    for pid in (load_pid, actor_pid):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    table = read_embeddings(report.output)
    assert hung_image in set(table.image_ids)  # the killed task was retried elsewhere
    difference = assert_same(table, read_embeddings(local.output))
    assert report.output.read_bytes() == local.output.read_bytes()
    print(f"killed load worker {load_pid} ({chunks_at_load_kill}/5 chunks done) and encode "
          f"actor {actor_pid} ({chunks_at_actor_kill}/5 chunks done); output complete and "
          f"unique, max |ray - local| = {difference:.3e}; {time.monotonic() - started:.1f} s")


def test_pool_leaving_no_cpu_for_loading_is_refused(
    ray_instance: Any, dataset: Dataset, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="leave no CPU for loading"):
        run("ray", dataset, tmp_path, num_actors=2)


def test_units_padded_and_all_skipped_units_shaped(dataset: Dataset) -> None:
    """The two Ray stages' functions in-process: a short unit, a unit of broken files only."""
    smoke = load_model("smoke", SMOKE, "cpu")
    frame = dataset.manifest.reset_index(drop=True)
    broken = [int(i) for i in np.flatnonzero(frame["image_id"].isin(dataset.broken))]
    good = [int(i) for i in np.flatnonzero(~frame["image_id"].isin(dataset.broken))]
    units = [good[:3], broken[:2]]  # 3 of 4 rows; 2 rows that all fail to load
    inputs = ray_backend._input_frames(frame, units, per_task=2)
    assert len(inputs) == 1
    batch = {name: inputs[0][name].to_numpy() for name in inputs[0].columns}
    spec = ray_backend._LoadSpec(dataset.root, tuple(sorted(set(frame["label"]))),
                                 tag_other_class, smoke.preprocess, BATCH_SIZE)
    loaded = ray_backend._load_units(batch, spec)
    assert loaded["positions"].tolist() == [[*good[:3], -1], [*broken[:2], -1, -1]]
    assert loaded["ok"].tolist() == [[True] * 3 + [False], [False] * 4]
    assert loaded["tensor"].shape == (2, BATCH_SIZE, 3, 64, 64)
    reasons = [json.loads(r) for r in loaded["reasons"]]  # [reason, kind, failure] per row
    assert [r[0] for r in reasons[0]] == ["", "", ""] and all(r[0] for r in reasons[1])
    assert {r[1] for r in reasons[1]} == {"unreadable"} and not any(r[2] for r in reasons[1])

    def buggy(image: Image.Image, context: ImageContext) -> Manipulated:
        raise KeyError("no such word")

    failing = ray_backend._load_units(batch, ray_backend._LoadSpec(
        dataset.root, spec.class_names, buggy, smoke.preprocess, BATCH_SIZE))
    failures = [r[2] for r in json.loads(failing["reasons"][0])]
    assert all(f.startswith("KeyError: 'no such word' (at test_ray_backend.py:") for f in failures)

    encoded = ray_backend._EncodeUnits(make_image_encoder(smoke.model, "cpu", "fp32"),
                                       smoke.embed_dim, 1)(loaded)
    assert encoded["vectors"].shape == (2, BATCH_SIZE, smoke.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(encoded["vectors"][0, :3], axis=1), 1, atol=1e-5)
    assert not encoded["vectors"][0, 3:].any() and not encoded["vectors"][1].any()


def test_empty_manifest_raises_data_error_before_ray(dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lists no images"):
        run("ray", dataset, tmp_path, manifest=dataset.manifest.iloc[:0])


def test_load_units_give_the_manipulation_a_caption_dataset_context(dataset: Dataset) -> None:
    """A caption dataset on Ray: the vocabulary as class names and each image's excluded words
    reach the manipulation, as in the local reader."""
    frame = dataset.manifest.reset_index(drop=True)
    good = [int(i) for i in np.flatnonzero(~frame["image_id"].isin(dataset.broken))][:2]
    frame = frame.assign(label="", words_in_captions=[json.dumps(["dog"])] * len(frame))
    seen: list[ImageContext] = []

    def record(image: Image.Image, context: ImageContext) -> Manipulated:
        seen.append(context)
        return Manipulated(image)

    inputs = ray_backend._input_frames(frame, [good], per_task=1)
    batch = {name: inputs[0][name].to_numpy() for name in inputs[0].columns}
    spec = ray_backend._LoadSpec(dataset.root, ("dog", "bus"), record,
                                 load_model("smoke", SMOKE, "cpu").preprocess, BATCH_SIZE)
    ray_backend._load_units(batch, spec)
    assert [(c.label, c.class_names, c.excluded_words) for c in seen] == [
        ("", ("dog", "bus"), ("dog",))] * 2
