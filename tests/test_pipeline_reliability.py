"""End to end: kill -9 a real `dvc repro` in the middle of an embedding stage, rerun, and get
byte-identical outputs to an uninterrupted run in another project (determinism + resume)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cliprobe.devtools import compose_into, make_project, repro

pytestmark = pytest.mark.slow

CHUNK = 16


def _images(shared: Path, target: Path, per_class: int) -> Path:
    labels = pd.read_csv(shared / "cifar10_test" / "labels.csv")
    for name, group in labels.groupby("class_name"):
        (target / name).mkdir(parents=True, exist_ok=True)
        for path in group["path"].head(per_class):
            shutil.copy(shared / "cifar10_test" / path, target / name / Path(path).name)
    return target


def _hashes(project: Path) -> dict[str, str]:
    """sha256 of every output that must be reproducible (the report embeds the git state)."""
    files = [*project.glob("data/manifests/*.parquet"), *project.glob("data/embeddings/**/*"),
             *project.glob("data/classifiers/**/*"), *project.glob("data/cells/**/*"),
             *project.glob("metrics/*"), *project.glob("plots/figures/*")]
    return {str(f.relative_to(project)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(files) if f.is_file() and f.name != ".gitignore"}


def test_kill_9_mid_stage_then_rerun_equals_uninterrupted_run(
    tmp_path: Path, shared_data: Path, repo: Path
) -> None:
    folder = _images(shared_data, tmp_path / "images", 16)  # 160 real CIFAR-10 photos
    overrides = ["model=smoke", "dataset=[image_folder]",
                 f"dataset.image_folder.source.path={folder}", "manipulation=[blurred]",
                 f"embed.chunk_size={CHUNK}", "embed.num_workers=0", "embed.batch_size=8",
                 "stats.bootstrap_resamples=100"]

    reference = make_project(tmp_path / "reference", repo)
    repro(reference, overrides)

    project = make_project(tmp_path / "interrupted", repo)
    compose_into(project, overrides)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "CLIPROBE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(["dvc", "repro"], cwd=project, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = project / "data" / ".partial"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(partial.glob("*/chunk-*.parquet"))) >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the pipeline finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)  # dvc and the stage process, like a power cut
    process.wait()
    chunks = len(list(partial.glob("*/chunk-*.parquet")))
    assert chunks >= 3
    # nothing half-written at a final path: every embedding file present is complete Parquet
    for file in project.glob("data/embeddings/**/*.parquet"):
        pd.read_parquet(file)

    rerun, _, output = repro(project)
    assert "resuming" in output, output
    assert any(stage.startswith(("embed@", "manipulate@")) for stage in rerun)
    assert not list(partial.glob("*/chunk-*.parquet")), "partial chunks are cleared on success"
    assert _hashes(project) == _hashes(reference)
