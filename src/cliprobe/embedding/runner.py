"""Embed every image of a manifest through a manipulation: the heart of embed/manipulate stages.

The runner receives its collaborators (transform, preprocess, encoder) ready-made, so each is
tested alone and the runner can be driven by a random-weight model in tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from cliprobe.datasets.captions import WORDS_COLUMN
from cliprobe.embedding.constructed import constructed_images
from cliprobe.embedding.reader import (
    ImageStep,
    Item,
    ManifestImages,
    collate_items,
    raise_failure,
)
from cliprobe.embedding.writer import ChunkStore, partial_key
from cliprobe.errors import DataError
from cliprobe.manipulations.registry import Construction


@dataclass
class EmbedReport:
    """What an embedding run did."""

    output: Path
    n_images: int
    n_skipped: int
    skipped: list[dict[str, str]]
    seconds: float
    resumed_chunks: int

    @property
    def images_per_second(self) -> float:
        computed = self.n_images + self.n_skipped
        return computed / self.seconds if self.seconds > 0 else float("nan")


def default_workers(device: str) -> int:
    """Worker processes for decoding: leave one core to the model (measured in benchmarks/)."""
    cores = os.cpu_count() or 1
    return max(0, min(4 if device == "cpu" else 8, cores - 1))


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def chunk_batches(store: ChunkStore, pending: list[int], batch_size: int) -> list[list[int]]:
    """Batches of manifest positions that never cross a chunk boundary."""
    batches = []
    for chunk in pending:
        rows = list(store.rows_of(chunk))
        batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return batches


def open_chunks(
    manifest: pd.DataFrame, metadata: dict[str, Any], chunk_size: int, partial_root: Path,
    description: str,
) -> tuple[pd.DataFrame, ChunkStore, list[int]]:
    """The manifest (re-indexed), its chunk store and the chunks still to compute.

    The store is keyed by everything that determines the chunks' content, the same for every
    backend, so a run killed under one backend resumes under another.
    """
    frame = manifest.reset_index(drop=True)
    if len(frame) == 0:
        # Without this, the single empty chunk is never written and reading it back fails
        # with FileNotFoundError instead of a sentence the user can act on.
        raise DataError(
            f"{description}: the manifest lists no images, so there is nothing to embed; "
            "check the dataset's source and rerun its fetch stage"
        )
    # Chunks store labels and class indices, and their vectors depend on the files read: a
    # manifest relabelled, re-pointed or listing other bytes (a photo replaced under the same
    # name) after a killed run must not reuse the old chunks.
    contents = ([str(s) for s in frame["sha256"]] if "sha256" in frame
                else [None] * len(frame))
    key = partial_key({"metadata": metadata, "chunk_size": chunk_size,
                       "ids": [str(i) for i in frame["image_id"]],
                       "paths": [str(p) for p in frame["path"]],
                       "sha256": contents,
                       "labels": [str(label) for label in frame["label"]],
                       "class_indices": [int(c) for c in frame["class_index"]],
                       **({"words": [str(w) for w in frame[WORDS_COLUMN]]}
                          if WORDS_COLUMN in frame else {})})
    store = ChunkStore(partial_root / key, chunk_size, len(frame))
    pending = store.pending()
    if store.n_chunks - len(pending):
        print(f"{description}: resuming, {store.n_chunks - len(pending)}/{store.n_chunks} "
              "chunks already complete")
    return frame, store, pending


def finish_chunks(
    store: ChunkStore, frame: pd.DataFrame, output: Path, metadata: dict[str, Any],
    embed_dim: int, description: str, started: float, resumed: int,
) -> EmbedReport:
    """Merge the complete chunks into ``output`` (atomically) and clear them; an all-failed
    dataset is an error, never an empty file."""
    skipped = store.skipped()
    n_images = len(frame) - len(skipped)
    if n_images == 0:
        reasons = "; ".join(f"{s['image_id']}: {s['reason']}" for s in skipped[:3])
        raise DataError(
            f"{description}: every one of the {len(frame)} images failed, so there is nothing "
            f"to embed (first reasons: {reasons})"
        )
    final_metadata = {**metadata, "n_images": n_images, "n_skipped": len(skipped),
                      "skipped": skipped, "embed_dim": embed_dim}
    store.merge(output, embed_dim, final_metadata)
    store.clear()
    return EmbedReport(output, n_images, len(skipped), skipped,
                       time.perf_counter() - started, resumed)


def embed_manifest(
    manifest: pd.DataFrame,
    image_root: Path,
    transform: ImageStep,
    preprocess: Callable[[Any], Any],
    encode: Callable[[Any], np.ndarray],
    embed_dim: int,
    output: Path,
    partial_root: Path,
    metadata: dict[str, Any],
    batch_size: int = 32,
    num_workers: int = 0,
    chunk_size: int = 512,
    description: str = "embed",
    pin_memory: bool = False,
    class_names: Sequence[str] | None = None,
    construction: Construction | None = None,
    construction_cache: Path | None = None,
    draft: int | None = None,
) -> EmbedReport:
    """Embed ``manifest``'s images into ``output`` (Parquet), resuming from complete chunks.

    ``metadata`` is the provenance written into the file; it also keys the partial chunks, so
    chunks of another configuration are never reused. ``class_names``: what context-aware
    manipulations pick words from (default: the manifest's labels).
    With ``construction`` (the
    manipulation's first step, which ``transform`` then skips) and ``construction_cache``,
    the constructed images are read from a per-dataset cache built on first use instead of
    being decoded and constructed again (:mod:`cliprobe.embedding.constructed`). ``draft``:
    reduced-scale JPEG decoding (:func:`cliprobe.images.load_rgb`), opt-in.
    """
    import torch
    from torch.utils.data import DataLoader

    started = time.perf_counter()
    frame, store, pending = open_chunks(manifest, metadata, chunk_size, partial_root, description)

    constructed = None
    if construction is not None and construction_cache is not None and pending:
        constructed = constructed_images(frame, image_root, construction, construction_cache,
                                         num_workers, draft)
    images = ManifestImages(frame, image_root, transform, preprocess, class_names,
                            constructed, draft)
    batches = chunk_batches(store, pending, batch_size)
    loader = DataLoader(
        images,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=collate_items,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    buffers: dict[int, list[tuple[Item, np.ndarray | None]]] = {}
    progress = tqdm(total=sum(len(b) for b in batches), desc=description, unit="img",
                    disable=None, mininterval=1.0)
    for batch in loader:
        for item in batch:
            raise_failure(item, str(frame.at[item.position, "image_id"]), description)
        usable = [item for item in batch if item.tensor is not None]
        vectors = encode(torch.stack([item.tensor for item in usable])) if usable else None
        row = 0
        chunk = batch[0].position // chunk_size
        bucket = buffers.setdefault(chunk, [])
        for item in batch:
            if item.tensor is not None:
                bucket.append((item, vectors[row]))  # type: ignore[index]
                row += 1
            else:
                bucket.append((item, None))
        progress.update(len(batch))
        if len(bucket) == len(store.rows_of(chunk)):
            flush_chunk(store, chunk, buffers.pop(chunk), frame, embed_dim)
    progress.close()

    return finish_chunks(store, frame, output, metadata, embed_dim, description, started,
                         store.n_chunks - len(pending))


def flush_chunk(
    store: ChunkStore,
    chunk: int,
    entries: list[tuple[Item, np.ndarray | None]],
    frame: pd.DataFrame,
    embed_dim: int,
) -> None:
    entries.sort(key=lambda entry: entry[0].position)
    kept = [(item, vector) for item, vector in entries if vector is not None]
    positions = [item.position for item, _ in kept]
    skipped = [
        {"image_id": str(frame.at[item.position, "image_id"]), "reason": item.skip_reason or "",
         "kind": item.skip_kind}
        for item, vector in entries
        if vector is None
    ]
    store.write_chunk(
        chunk,
        image_ids=[str(frame.at[p, "image_id"]) for p in positions],
        labels=[str(frame.at[p, "label"]) for p in positions],
        class_indices=[int(frame.at[p, "class_index"]) for p in positions],
        vectors=np.stack([vector for _, vector in kept]) if kept else np.zeros((0, embed_dim)),
        skipped=skipped,
        dim=embed_dim,
        infos=[item.info for item, _ in kept],
    )
