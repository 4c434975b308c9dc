"""kill -9 a real embedding process mid-run, then resume it to a byte-identical result.

A child Python process embeds 60 images (58 real photo crops, 2 broken files) in chunks of 8
with the smoke model; only in that child the manipulation sleeps per image, so the parent can
SIGKILL it once two chunks are on disk. Nothing may then sit at the final path, the chunks on
disk must be complete Parquet files, and a rerun must resume them and produce exactly the
bytes of an uninterrupted run (computed meanwhile by a third process with the same settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from bad_inputs import CASES_BY_NAME, write_corpus, write_photos
from cliprobe.datasets.manifest import build_manifest, write_manifest
from cliprobe.embedding.writer import ChunkStore
from cliprobe.io.embeddings import read_embeddings

CHUNK_SIZE = 8
N_PHOTOS = 58
SLOW_SECONDS_PER_IMAGE = 0.15
KILL_AFTER_CHUNKS = 2
DEADLINE_SECONDS = 90.0

CHILD = r'''
"""Embed a manifest with the smoke model; optionally sleep per image (only here)."""
import json
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)  # the same in every child, so the floats are the same

from cliprobe.config.schema import ModelConfig
from cliprobe.datasets.manifest import read_manifest
from cliprobe.embedding.encoder import make_image_encoder
from cliprobe.embedding.reader import manipulation_transform
from cliprobe.embedding.runner import embed_manifest
from cliprobe.manipulations import get
from cliprobe.manipulations.registry import NoParams
from cliprobe.models import load_model

args = json.loads(sys.argv[1])
manifest, _ = read_manifest(Path(args["manifest"]))
config = ModelConfig(arch="cliprobe-smoke", pretrained=None, random_init_seed=0)
loaded = load_model("smoke", config, "cpu")
identity = manipulation_transform(get("identity"), NoParams(), "original", 0)


def slow_identity(image, image_id):
    time.sleep(args["delay"])
    return identity(image, image_id)


report = embed_manifest(
    manifest,
    image_root=Path(args["root"]),
    transform=slow_identity if args["delay"] else identity,
    preprocess=loaded.preprocess,
    encode=make_image_encoder(loaded.model, "cpu", loaded.config.precision),
    embed_dim=loaded.embed_dim,
    output=Path(args["output"]),
    partial_root=Path(args["partial"]),
    metadata={"model": "smoke", "dataset": "kill-test", "manipulation": "original"},
    batch_size=4,
    num_workers=0,
    chunk_size=args["chunk_size"],
    description="kill-test",
)
print("REPORT " + json.dumps({"resumed_chunks": report.resumed_chunks,
                              "n_images": report.n_images, "n_skipped": report.n_skipped}))
'''


def sha256(path: Path) -> str:
    """Hex digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start(script: Path, folder: Path, name: str, output: Path, partial: Path,
          delay: float) -> subprocess.Popen[bytes]:
    """Start the embedding child; its stdout/stderr go to ``folder/name.{out,err}``."""
    args = {"manifest": str(folder / "manifest.parquet"), "root": str(folder / "images"),
            "output": str(output), "partial": str(partial), "delay": delay,
            "chunk_size": CHUNK_SIZE}
    with open(folder / f"{name}.out", "wb") as out, open(folder / f"{name}.err", "wb") as err:
        return subprocess.Popen([sys.executable, str(script), json.dumps(args)], stdout=out,
                                stderr=err, cwd=folder)


def finish(process: subprocess.Popen[bytes], folder: Path, name: str) -> dict[str, Any]:
    """Wait for a child that must succeed; return its report."""
    assert process.wait(timeout=DEADLINE_SECONDS) == 0, (folder / f"{name}.err").read_text()
    stdout = (folder / f"{name}.out").read_text()
    line = next(line for line in stdout.splitlines() if line.startswith("REPORT "))
    return {"stdout": stdout, **json.loads(line.removeprefix("REPORT "))}


def chunk_files(partial: Path) -> list[Path]:
    """Complete chunk files (by name; temporaries are ``.chunk-*.tmp-*``)."""
    return sorted(partial.glob("*/chunk-*.parquet"))


def test_kill_9_then_resume_is_byte_identical(tmp_path: Path) -> None:
    images = tmp_path / "images"
    photos = write_photos(images / "good", N_PHOTOS, crop=96)
    rows = [{"image_id": f"{i:03d}_{label}", "path": f"good/{name}", "label": label}
            for i, (name, label) in enumerate(photos)]
    # two broken files, one early (a chunk done before the kill), one late (after it)
    for image_id, case in (("010_broken", "truncated_jpeg"), ("050_broken", "zero_byte_file")):
        written = write_corpus(images / "bad", (CASES_BY_NAME[case],))
        rows.append({"image_id": image_id, "path": f"bad/{written[0].manifest_path}",
                     "label": "broken"})
    manifest = build_manifest(pd.DataFrame(rows))
    assert len(manifest) == 60
    write_manifest(manifest, tmp_path / "manifest.parquet", {"source": "test"})
    script = tmp_path / "embed_child.py"
    script.write_text(CHILD)

    out_dir, partial = tmp_path / "out", tmp_path / "partial"
    output = out_dir / "emb.parquet"
    reference_output = tmp_path / "reference" / "emb.parquet"
    started = time.monotonic()
    victim = start(script, tmp_path, "victim", output, partial, SLOW_SECONDS_PER_IMAGE)
    # the uninterrupted run, meanwhile (the victim mostly sleeps)
    reference = start(script, tmp_path, "reference", reference_output,
                      tmp_path / "reference_partial", 0.0)
    try:
        while len(chunk_files(partial)) < KILL_AFTER_CHUNKS:
            assert victim.poll() is None, (
                "the child finished before it could be killed: "
                + (tmp_path / "victim.err").read_text()[-2000:]
            )
            assert time.monotonic() - started < DEADLINE_SECONDS, "no chunk appeared in time"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        killed_at = time.monotonic() - started

        # 1. nothing at the final path, at most stale temporaries beside it
        assert not output.exists()
        leftovers = list(out_dir.iterdir()) if out_dir.exists() else []
        assert all(p.name.startswith(".emb.parquet.tmp-") for p in leftovers), leftovers

        # 2. chunks on disk are complete Parquet files holding exactly their rows
        chunks = chunk_files(partial)
        complete = len(chunks)
        assert complete >= KILL_AFTER_CHUNKS
        assert complete < len(manifest) // CHUNK_SIZE, "the child was not killed mid-run"
        store = ChunkStore(chunks[0].parent, CHUNK_SIZE, len(manifest))
        assert chunks == [store.chunk_path(i) for i in range(complete)]
        for index, chunk in enumerate(chunks):
            data = chunk.read_bytes()
            assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", f"{chunk} is truncated"
            table = pq.read_table(chunk)
            skipped = json.loads(table.schema.metadata[b"cliprobe"])["skipped"]
            assert len(table) + len(skipped) == len(store.rows_of(index))
        others = [p for p in chunks[0].parent.iterdir() if p not in chunks]
        assert all(p.name.startswith(".chunk-") and ".tmp-" in p.name for p in others), others

        # 3. the rerun resumes from those chunks and completes
        resumed = finish(start(script, tmp_path, "resume", output, partial, 0.0), tmp_path,
                         "resume")
        assert resumed["resumed_chunks"] == complete > 0
        n_chunks = -(-len(manifest) // CHUNK_SIZE)
        assert f"resuming, {complete}/{n_chunks} chunks already complete" in resumed["stdout"]
        assert resumed["n_images"] == N_PHOTOS and resumed["n_skipped"] == 2
        assert not chunk_files(partial), "partial chunks left behind after the merge"

        # 4. byte-identical to the uninterrupted run
        uninterrupted = finish(reference, tmp_path, "reference")
        assert uninterrupted["resumed_chunks"] == 0
        assert sha256(output) == sha256(reference_output)
        table = read_embeddings(output)
        assert len(table) == N_PHOTOS
        assert [s["image_id"] for s in table.metadata["skipped"]] == ["010_broken", "050_broken"]
        print(f"killed after {killed_at:.1f} s with {complete}/{n_chunks} chunks complete; "
              f"resumed {resumed['resumed_chunks']}; sha256 {sha256(output)[:16]} equal; "
              f"total {time.monotonic() - started:.1f} s")
    finally:
        for process in (victim, reference):
            if process.poll() is None:
                process.kill()
                process.wait()

