"""The fixed price of a stage: model build with and without random init, imports, and one
cell's stage command in its own process vs handed to a warm worker (issue 15, target 2).

    python benchmarks/startup.py                 # ViT-B-32
    python benchmarks/startup.py --arch ViT-L-14

1. building the model from a checkpoint file (random weights saved first): open_clip's way
   (random init, then the checkpoint overwrites it) vs cliprobe's (init skipped), best of 3;
2. importing a score stage's modules (no model) vs a model stage's (torch + open_clip), in
   fresh interpreters;
3. the same small cell (smoke model, the 12 sample photos, grey) run as a stage command: in its
   own process (CLIPROBE_WORKER=0) vs handed to an already warm worker; best of 3 each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from _shared import machine, random_model  # benchmarks/_shared.py
from cliprobe.devtools import compose_into, make_project
from cliprobe.models import loader


def build_seconds(arch: str, checkpoint: Path, skip_init: bool) -> float:
    """Best of 3: seconds to build ``arch`` from ``checkpoint``."""
    config = random_model(arch).model_copy(update={"pretrained": str(checkpoint),
                                                   "random_init_seed": None})
    original = loader.skipped_parameter_init
    times = []
    try:
        if not skip_init:
            loader.skipped_parameter_init = nullcontext  # type: ignore[assignment]
        for _ in range(3):
            started = time.perf_counter()
            loader.load_model(arch, config, "cpu")
            times.append(time.perf_counter() - started)
    finally:
        loader.skipped_parameter_init = original
    return min(times)


def import_seconds(module: str) -> float:
    """Seconds for a fresh interpreter to import ``module`` (best of 3)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def stage_seconds(project: Path, env: dict[str, str]) -> float:
    """Best of 3: seconds of one manipulate stage command (grey, smoke, sample)."""
    command = [sys.executable, "-m", "cliprobe.stages", "embed", "--params",
               "data/params/manipulate/smoke/sample/grey.json", "--model", "smoke", "--dataset",
               "sample", "--manipulation", "grey"]
    times = []
    for _ in range(3):
        (project / "data/embeddings/smoke/sample/grey.parquet").unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--arch", default="ViT-B-32")
    args = parse.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="cliprobe-startup-") as tmp:
        root = Path(tmp)
        checkpoint = root / "weights.pt"
        torch.save(loader.load_model(args.arch, random_model(args.arch), "cpu")
                   .model.state_dict(), checkpoint)
        with_init = build_seconds(args.arch, checkpoint, skip_init=False)
        without = build_seconds(args.arch, checkpoint, skip_init=True)
        score = import_seconds("cliprobe.stages.score")
        model = import_seconds("cliprobe.stages.embed, torch, open_clip")

        project = make_project(root / "project")
        compose_into(project, ["model=smoke", "manipulation=[grey]"])
        workers = root / "w"
        workers.mkdir(mode=0o700)
        env = {**os.environ, "CLIPROBE_OFFLINE": "1", "CLIPROBE_WORKER_DIR": str(workers)}
        for stage, rest in (("split_params", ["--params", "params.yaml", "--out",
                                              "data/params"]),
                            ("fetch", ["--params", "data/params", "--dataset", "sample"])):
            subprocess.run([sys.executable, "-m", "cliprobe.stages", stage, *rest],
                           cwd=project, env=env, check=True, capture_output=True)
        own = stage_seconds(project, {**env, "CLIPROBE_WORKER": "0"})
        stage_seconds(project, env)  # starts the worker
        warm = stage_seconds(project, env)
        from cliprobe.worker.control import stop_workers

        stop_workers(workers)
    print(f"1. build {args.arch} from a checkpoint: with random init {with_init:.2f} s, "
          f"init skipped {without:.2f} s = {with_init / without:.2f}x faster")
    print(f"2. imports: a score stage {score:.2f} s; a model stage (torch, open_clip) "
          f"{model:.2f} s")
    print(f"3. one small cell's stage command: own process {own:.2f} s, warm worker "
          f"{warm:.2f} s = {own / warm:.2f}x")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
