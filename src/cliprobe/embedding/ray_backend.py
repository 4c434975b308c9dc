"""The ``ray`` execution backend: :func:`embed_manifest_ray`, a drop-in for ``embed_manifest``.

Same inputs, same output file, same resumable chunks as :mod:`cliprobe.embedding.runner`; only
the work is spread over a Ray cluster with Ray Data::

    manifest rows (position, unit, image_id, path, label), blocks of ~images_per_task rows
      -> map_batches, tasks:       load_rgb -> manipulation -> preprocess  (any CPU of the cluster)
                                   one output row per encode batch ("unit")
      -> map_batches, actor pool:  the model, built once per actor, encodes each unit alone
                                   (one actor per GPU; on CPUs only, half the CPUs)
      -> the driver:               units in manifest order -> ChunkStore -> one Parquet file

A unit is exactly the local backend's encode batch (``batch_size`` rows, never crossing a
chunk) and travels as one row, so Ray may split or merge blocks as it likes without changing
which images share a forward pass: the embeddings are the local backend's up to the float
rounding of the thread count (bit-identical in the tests).

The driver writes the chunks with the local backend's own :class:`ChunkStore` and flush code,
under the same partial key, so a run killed under one backend resumes under either, and the
final file is the local backend's byte for byte in layout and metadata.

Fault tolerance is Ray's: load tasks are retried (``max_retries``) when their worker dies; an
encode actor that dies is restarted (``max_restarts``) and its unfinished batches are retried
on it (``max_task_retries``). Ray Data only hands a block downstream once the task that made it
has finished, so a killed worker loses no rows and duplicates none (the driver checks both).

Requirements: ``pip install 'cliprobe[ray]'``; on a multi-node cluster every node needs cliprobe
installed (or ``runtime_env={"py_modules": [...]}``) and must see ``image_root`` at the same
path (a shared file system): tasks read the images where they run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from cliprobe.datasets.captions import WORDS_COLUMN
from cliprobe.embedding.reader import ImageStep, Item, ManifestImages, raise_failure
from cliprobe.embedding.runner import (
    EmbedReport,
    chunk_batches,
    finish_chunks,
    flush_chunk,
    open_chunks,
)
from cliprobe.embedding.writer import ChunkStore

T = TypeVar("T")
#: ``(B, 3, H, W)`` tensor -> ``(B, D)`` float32 unit vectors (see ``make_image_encoder``)
Encoder = Callable[[Any], np.ndarray]

#: Retries of a load task whose worker died, restarts of a dead encode actor, and retries of
#: the batches it was running. Finite, so an image that kills its worker every time (out of
#: memory) fails the stage instead of looping forever. Ray's own defaults are infinite.
DEFAULT_RETRIES = 4
#: Images per load task (rounded to whole encode batches): large enough to amortise Ray's
#: per-task overhead (~10 ms on a busy 2-core machine), small enough to spread over a cluster
#: and to make a retry cheap.
DEFAULT_IMAGES_PER_TASK = 128


@dataclass(frozen=True)
class BuildInWorker(Generic[T]):
    """A collaborator built inside each Ray worker process, once, by calling ``build()``.

    Pass one instead of a ready-made ``transform`` / ``preprocess`` / ``encode`` when the
    object should not travel from the driver: a model (each actor loads its own copy from its
    node's cache instead of receiving the driver's through the object store; on a GPU node it
    lands on that node's GPU), or anything cloudpickle cannot serialise. ``build`` itself must
    be picklable, e.g. ``functools.partial(manipulation_step, manipulation, params, cell, seed)``.
    """

    build: Callable[[], T]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


#: What workers built from :class:`BuildInWorker` so far (per process, by key).
_BUILT: dict[str, Any] = {}


def _resolve(value: T | BuildInWorker[T]) -> T:
    """``value`` itself, or what its :class:`BuildInWorker` builds (once per process)."""
    if not isinstance(value, BuildInWorker):
        return value
    if value.key not in _BUILT:
        _BUILT[value.key] = value.build()
    return _BUILT[value.key]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _ModelEncoder:
    """Picklable: load a model (``build_model()`` -> LoadedModel) and return its encoder."""

    build_model: Callable[[], Any]

    def __call__(self) -> Encoder:
        from cliprobe.embedding.encoder import make_image_encoder

        loaded = self.build_model()
        config = loaded.config
        features = getattr(config, "features", "global")
        if features == "global":
            return make_image_encoder(loaded.model, loaded.device, config.precision)
        # feature-map variants (mac, rmac, ...), as the stage builds them for the local backend
        return make_image_encoder(loaded.model, loaded.device, config.precision, features,
                                  getattr(config, "feature_params", None))


def encoder_from_model(build_model: Callable[[], Any]) -> BuildInWorker[Encoder]:
    """An ``encode`` for :func:`embed_manifest_ray` whose model each actor builds itself.

    ``build_model`` is a picklable callable returning a
    :class:`~cliprobe.models.loader.LoadedModel`, e.g.
    ``functools.partial(load_model, name, config, "auto")`` ("auto" resolves on the actor's
    node: its GPU when the actor has one).
    """
    return BuildInWorker(_ModelEncoder(build_model))


# ------------------------------------------------------------------------------ worker side


@dataclass(frozen=True)
class _LoadSpec:
    """What a load task needs besides its rows."""

    image_root: Path
    class_names: tuple[str, ...]
    transform: ImageStep | BuildInWorker[ImageStep]
    preprocess: Callable[[Image.Image], Any] | BuildInWorker[Callable[[Image.Image], Any]]
    batch_size: int


def _load_units(batch: dict[str, np.ndarray], spec: _LoadSpec) -> dict[str, np.ndarray]:
    """Ray task: load, manipulate and preprocess manifest rows; one output row per unit.

    Exactly the local reader's per-image code (:class:`ManifestImages`), with the class names
    of the whole manifest (context-aware manipulations pick words from them). A bad image is
    ``ok=False`` with its reason, never an exception. Units are padded to ``batch_size`` rows
    (position -1) so every output row has the same shape.
    """
    import torch

    torch.set_num_threads(1)
    transform = _resolve(spec.transform)
    preprocess = _resolve(spec.preprocess)
    rows = pd.DataFrame({
        "image_id": [str(i) for i in batch["image_id"]],
        # bytes: a non-UTF-8 file name survives Arrow (which only holds valid UTF-8 strings)
        "path": [os.fsdecode(p) for p in batch["path"]],
        "label": [str(label) for label in batch["label"]],
    })
    if WORDS_COLUMN in batch:
        rows[WORDS_COLUMN] = [str(words) for words in batch[WORDS_COLUMN]]
    images = ManifestImages(rows, spec.image_root, transform, preprocess, spec.class_names)
    items = [images[i] for i in range(len(rows))]
    shapes = {tuple(np.shape(item.tensor)) for item in items if item.tensor is not None}
    if len(shapes) > 1:
        raise ValueError(f"preprocess returned tensors of different shapes: {sorted(shapes)}")
    shape = shapes.pop() if shapes else tuple(np.shape(preprocess(Image.new("RGB", (32, 32)))))

    units = list(dict.fromkeys(batch["unit"].tolist()))
    size = spec.batch_size
    positions = np.full((len(units), size), -1, dtype=np.int64)
    ok = np.zeros((len(units), size), dtype=bool)
    tensors = np.zeros((len(units), size, *shape), dtype=np.float32)
    reasons: list[list[str]] = [[] for _ in units]
    infos: list[list[str]] = [[] for _ in units]
    slot = {unit: 0 for unit in units}
    row_of = {unit: row for row, unit in enumerate(units)}
    for k, item in enumerate(items):
        unit = int(batch["unit"][k])
        row, column = row_of[unit], slot[unit]
        slot[unit] += 1
        positions[row, column] = int(batch["position"][k])
        reasons[row].append([item.skip_reason or "", item.skip_kind, item.failure])
        infos[row].append(item.info)
        if item.tensor is not None:
            ok[row, column] = True
            tensors[row, column] = np.asarray(item.tensor, dtype=np.float32)
    return {
        "positions": positions,
        "ok": ok,
        "tensor": tensors,
        "reasons": np.array([json.dumps(r) for r in reasons], dtype=object),
        "infos": np.array([json.dumps(i) for i in infos], dtype=object),
    }


class _EncodeUnits:
    """Ray actor: holds the encoder (model built once) and encodes every unit on its own."""

    def __init__(self, encode: Encoder | BuildInWorker[Encoder], embed_dim: int,
                 threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.encode = _resolve(encode)
        self.embed_dim = embed_dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Replace each unit's tensors by their embeddings (zeros where skipped or padding)."""
        import torch

        ok = batch["ok"]
        vectors = np.zeros((*ok.shape, self.embed_dim), dtype=np.float32)
        for row in range(len(ok)):
            usable = np.flatnonzero(ok[row])
            if len(usable) == 0:
                continue
            tensors = torch.from_numpy(np.ascontiguousarray(batch["tensor"][row][usable]))
            encoded = np.asarray(self.encode(tensors), dtype=np.float32)
            if encoded.shape != (len(usable), self.embed_dim):
                raise ValueError(f"encoder returned shape {encoded.shape} for {len(usable)} "
                                 f"images; expected ({len(usable)}, {self.embed_dim})")
            vectors[row, usable] = encoded
        return {"positions": batch["positions"], "ok": ok, "reasons": batch["reasons"],
                "infos": batch["infos"], "vectors": vectors}


# ------------------------------------------------------------------------------ driver side


def _connect(address: str | None, runtime_env: dict[str, Any] | None) -> bool:
    """Connect to Ray (or start a local instance); True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address is None and not os.environ.get("RAY_ADDRESS"):
        # A private single-node instance: loopback only, no dashboard.
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False,
                 ignore_reinit_error=True, runtime_env=runtime_env,
                 _node_ip_address="127.0.0.1")
    else:
        ray.init(address=address, ignore_reinit_error=True, runtime_env=runtime_env)
    return True


@dataclass(frozen=True)
class _PoolSize:
    """The encode actor pool: how many actors and what each one reserves."""

    actors: int
    cpus: float
    gpus: float


def _pool_size(num_actors: int | None, cpus_per_actor: float,
               gpus_per_actor: float | None) -> _PoolSize:
    """Size the pool to the cluster: one actor per GPU, else half the CPUs (rest: loading)."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    per_gpu = (1.0 if gpus >= 1 else 0.0) if gpus_per_actor is None else gpus_per_actor
    if num_actors is None:
        if per_gpu > 0:
            num_actors = max(1, int(gpus // per_gpu))
        else:
            num_actors = max(1, int(cpus // 2 // cpus_per_actor))
    if num_actors < 1:
        raise ValueError(f"num_actors must be at least 1, got {num_actors}")
    if num_actors * cpus_per_actor > cpus - 1:
        raise ValueError(
            f"{num_actors} encode actors x {cpus_per_actor:g} CPUs leave no CPU for loading "
            f"images on this cluster ({cpus:g} CPUs): lower num_actors or cpus_per_actor"
        )
    if per_gpu * num_actors > gpus:
        raise ValueError(f"{num_actors} encode actors x {per_gpu:g} GPUs exceed the cluster's "
                         f"{gpus:g} GPUs: lower num_actors or gpus_per_actor")
    return _PoolSize(num_actors, cpus_per_actor, per_gpu)


def _input_frames(frame: pd.DataFrame, batches: list[list[int]],
                  per_task: int) -> list[pd.DataFrame]:
    """Manifest rows of the pending units, ``per_task`` whole units per block (load task)."""
    frames = []
    for first in range(0, len(batches), per_task):
        units = range(first, min(first + per_task, len(batches)))
        positions = [p for unit in units for p in batches[unit]]
        frames.append(pd.DataFrame({
            "position": np.asarray(positions, dtype=np.int64),
            "unit": np.asarray([u for u in units for _ in batches[u]], dtype=np.int64),
            "image_id": pd.array([str(frame.at[p, "image_id"]) for p in positions],
                                 dtype=object),
            "path": pd.array([os.fsencode(str(frame.at[p, "path"])) for p in positions],
                             dtype=object),
            "label": pd.array([str(frame.at[p, "label"]) for p in positions], dtype=object),
            **({WORDS_COLUMN: pd.array([str(frame.at[p, WORDS_COLUMN]) for p in positions],
                                       dtype=object)} if WORDS_COLUMN in frame else {}),
        }))
    return frames


def _retry_args(max_retries: int) -> tuple[dict[str, int], dict[str, int]]:
    """Ray remote args for the load tasks and for the encode actors.

    Ray Data's defaults already retry (infinitely); these make the budget finite and explicit,
    and, differing between the two stages, keep Ray from fusing the loading into the actors.
    Ray 2.60 deprecates passing remote args to ``map_batches`` (removal announced for 2.64)
    without a named replacement for these three: while ``map_batches`` still takes them they
    are passed (the caller silences the warning); once it does not, Ray's defaults apply.
    """
    import inspect

    from ray.data import Dataset

    parameters = inspect.signature(Dataset.map_batches).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return {}, {}
    return ({"max_retries": max_retries},
            {"max_restarts": max_retries, "max_task_retries": max_retries})


def embed_manifest_ray(
    manifest: pd.DataFrame,
    image_root: Path,
    transform: ImageStep | BuildInWorker[ImageStep],
    preprocess: Callable[[Any], Any] | BuildInWorker[Callable[[Any], Any]],
    encode: Encoder | BuildInWorker[Encoder],
    embed_dim: int,
    output: Path,
    partial_root: Path,
    metadata: dict[str, Any],
    batch_size: int = 32,
    num_workers: int = 0,
    chunk_size: int = 512,
    description: str = "embed",
    pin_memory: bool = False,
    *,
    address: str | None = None,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
    max_retries: int = DEFAULT_RETRIES,
    images_per_task: int = DEFAULT_IMAGES_PER_TASK,
    runtime_env: dict[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> EmbedReport:
    """Embed ``manifest``'s images into ``output`` on Ray; same contract as ``embed_manifest``.

    The positional parameters are :func:`cliprobe.embedding.runner.embed_manifest`'s;
    ``num_workers`` and ``pin_memory`` are accepted for that and ignored (Ray runs load tasks
    on every free CPU of the cluster). ``transform``, ``preprocess`` and ``encode`` travel to
    the workers with cloudpickle (closures are fine); wrap one in :class:`BuildInWorker` to
    build it in the worker instead (:func:`encoder_from_model` for a model).

    Ray-only: ``address`` of the cluster (``None``: a running ``ray.init`` of this process, else
    ``$RAY_ADDRESS``, else a new local instance with this machine's CPUs, shut down at the end);
    ``num_actors`` encode actors (``None``: one per GPU, else half the CPUs), each reserving
    ``cpus_per_actor`` CPUs (its torch threads) and ``gpus_per_actor`` GPUs (``None``: 1 when the
    cluster has GPUs); ``max_retries`` for dead load tasks, dead actors and their batches;
    ``images_per_task`` images per load task; ``runtime_env`` for ``ray.init`` (only used when
    this call connects).
    """
    del num_workers, pin_memory  # the local backend's knobs; Ray schedules by resources
    import ray

    started = time.perf_counter()
    # The local backend's chunks, key and merge: files are interchangeable between backends.
    frame, store, pending = open_chunks(manifest, metadata, chunk_size, Path(partial_root),
                                        description)
    batches = chunk_batches(store, pending, batch_size)

    if batches:
        we_started = _connect(address, runtime_env)
        try:
            pool = _pool_size(num_actors, cpus_per_actor, gpus_per_actor)
            labels = (tuple(class_names) if class_names is not None
                      else tuple(sorted({str(label) for label in frame["label"]})))
            spec = _LoadSpec(Path(image_root), labels, transform, preprocess, batch_size)
            inputs = _input_frames(frame, batches, max(1, images_per_task // batch_size))
            _run(frame, inputs, store, spec, encode, embed_dim, description, pool, max_retries)
        finally:
            if we_started:
                ray.shutdown()

    return finish_chunks(store, frame, output, metadata, embed_dim, description, started,
                         store.n_chunks - len(pending))


def _run(
    frame: pd.DataFrame,
    inputs: list[pd.DataFrame],
    store: ChunkStore,
    spec: _LoadSpec,
    encode: Encoder | BuildInWorker[Encoder],
    embed_dim: int,
    description: str,
    pool: _PoolSize,
    max_retries: int,
) -> None:
    """Run the Ray Data pipeline over ``inputs`` and write each chunk once it is complete."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    settings = {"enable_progress_bars": False,  # the driver shows one tqdm bar, as locally
                # an actor killed while building its model is replaced, not fatal
                "max_consecutive_actor_init_deaths": max_retries}
    saved = {name: getattr(context, name) for name in settings if hasattr(context, name)}
    saved_order = context.execution_options.preserve_order
    load_retries, actor_retries = _retry_args(max_retries)
    # Datasets copy the current context when created: set ours, build, restore the caller's.
    try:
        for name in saved:
            setattr(context, name, settings[name])
        context.execution_options.preserve_order = True
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            dataset = (
                ray.data.from_pandas(inputs)
                .map_batches(_load_units, batch_size=None, batch_format="numpy",
                             fn_kwargs={"spec": spec}, num_cpus=1, **load_retries)
                # one unit per call (Ray requires a batch size when GPUs are requested)
                .map_batches(_EncodeUnits, batch_size=1, batch_format="numpy",
                             fn_constructor_kwargs={"encode": encode, "embed_dim": embed_dim,
                                                    "threads": int(pool.cpus)},
                             compute=ActorPoolStrategy(size=pool.actors),
                             num_cpus=pool.cpus, num_gpus=pool.gpus, **actor_retries)
            )
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        context.execution_options.preserve_order = saved_order

    buffers: dict[int, dict[int, tuple[Item, np.ndarray | None]]] = {}
    progress = tqdm(total=sum(len(f) for f in inputs), desc=description, unit="img",
                    disable=None, mininterval=1.0)
    # prefetch_batches=0: with prefetching, Ray holds each block back until the next one has
    # arrived, so a chunk that is complete would wait (unwritten) behind a slow batch.
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy",
                                      prefetch_batches=0):
        for unit in range(len(batch["positions"])):
            reasons, infos = json.loads(batch["reasons"][unit]), json.loads(batch["infos"][unit])
            for column, position in enumerate(batch["positions"][unit].tolist()):
                if position < 0:
                    continue  # padding of a short unit
                chunk = position // store.chunk_size
                bucket = buffers.setdefault(chunk, {})
                if position in bucket or store.done(chunk):
                    raise RuntimeError(f"{description}: Ray returned manifest row {position} "
                                       "twice")
                ok = bool(batch["ok"][unit][column])
                reason, kind, failure = reasons[column]
                item = Item(position, None, None if ok else reason, infos[column], kind, failure)
                raise_failure(item, str(frame.at[position, "image_id"]), description)
                bucket[position] = (item, batch["vectors"][unit][column] if ok else None)
                progress.update(1)
        for chunk in [c for c, bucket in buffers.items()
                      if len(bucket) == len(store.rows_of(c))]:
            flush_chunk(store, chunk, list(buffers.pop(chunk).values()), frame, embed_dim)
    progress.close()
    if buffers:
        missing = sum(len(store.rows_of(c)) - len(b) for c, b in buffers.items())
        raise RuntimeError(f"{description}: Ray returned no result for {missing} manifest rows")
