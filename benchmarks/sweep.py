"""The ImageNet-C sweep through DVC against the same work in one process (issue 15, targets 2-3).

    python benchmarks/sweep.py                          # 100 images x 95 cells, ViT-B-32 (long)
    python benchmarks/sweep.py --images 20 --cells 19   # quicker: 19 cells spread over the 95
    python benchmarks/sweep.py --arch cliprobe-smoke --images 12   # the smoke model, 95 cells

Sides, each in a fresh throw-away copy of this project (cliprobe.devtools), random weights:
  one process  every stage command of the pipeline, in DVC's order, run in ONE
               Python process that loads the model once: the limit, with no price per cell;
  dvc repro    the real pipeline, with warm model workers (the default);
  no worker    the real pipeline with CLIPROBE_WORKER=0 (every stage in its own process: how
               sweeps ran before), unless --skip-no-worker.
Then a no-op `dvc repro` of the swept project (best of --repeats), and DVC's own share of the
full run: wall time minus the stage commands' time (each command logs its start, interpreter
start-up included, and end through CLIPROBE_STAGE_TIMES).

Targets: dvc repro / one process <= 1.5; no-op < 3 s; DVC's share of the full run <= 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _shared import IMAGENET_SAMPLE, machine  # benchmarks/_shared.py
from cliprobe.config.compose import compose_params, to_yaml
from cliprobe.devtools import make_project, repro
from cliprobe.manipulations.sweeps import imagenet_c_sweep

MODEL = "vitb32-random"


def sweep_project(root: Path, data: Path, images: int, cells: int, arch: str) -> Path:
    """A project whose grid is ``arch`` (random weights) x the first ``images`` photos x
    ``cells`` cells of the ImageNet-C sweep spread evenly over it (all 95 by default), with
    params.yaml composed."""
    project = make_project(root)
    (project / "conf" / "model" / f"{MODEL}.yaml").write_text(
        f"{MODEL}:\n  arch: {arch}\n  pretrained: null\n  random_init_seed: 0\n")
    labels = pd.read_csv(data / "labels.csv").head(images)
    labels_csv = root.parent / f"{root.name}-labels.csv"
    labels[["path", "class_name"]].rename(columns={"class_name": "label"}).to_csv(
        labels_csv, index=False)
    composed = compose_params(project / "conf", [
        f"model={MODEL}", "dataset=[image_folder]", f"dataset.image_folder.source.path={data}",
        f"dataset.image_folder.source.labels_csv={labels_csv}", "+experiment=imagenet_c_sweep"])
    every = list(imagenet_c_sweep())  # 19 corruptions x severities 1-5
    chosen = [every[round((i + 0.5) * len(every) / cells - 0.5)] for i in range(cells)]
    composed["manipulation"] = {k: v for k, v in composed["manipulation"].items() if k in chosen}
    (project / "params.yaml").write_text(to_yaml(composed))
    return project


def stage_commands(project: Path) -> list[str]:
    """Every stage command of the pipeline, dependencies first (as `dvc repro` orders them;
    `dvc repro --dry` cannot list a fresh project's stages)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        order = list(reversed(list(nx.lexicographical_topological_sort(graph, key=str))))
        return [stage.cmd for stage in order if getattr(stage, "cmd", None)]


def run_in_one_process(project: Path, commands: list[str]) -> float:
    """Seconds to run ``commands`` in one fresh Python process (model loaded once)."""
    script = (
        "import shlex, subprocess, sys\n"
        "from cliprobe.models.loader import keep_loaded_models\n"
        "from cliprobe.stages import run_stage\n"
        "keep_loaded_models()\n"
        "for command in sys.argv[1:]:\n"
        "    words = shlex.split(command)\n"
        "    if words[:3] == ['python', '-m', 'cliprobe.stages']:\n"
        "        code = run_stage(words[3], words[4:])\n"
        "    else:\n"
        "        code = subprocess.call(words)\n"
        "    if code:\n"
        "        sys.exit(f'{command} failed ({code})')\n"
    )
    env = {**os.environ, "CLIPROBE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, *commands], cwd=project, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def full_repro(project: Path, **env: str) -> tuple[int, float, float]:
    """(stages, wall seconds, seconds spent in stage commands) of a full `dvc repro`."""
    times = project / "stage_times.jsonl"
    times.unlink(missing_ok=True)
    previous = {k: os.environ.get(k) for k in (*env, "CLIPROBE_STAGE_TIMES")}
    os.environ.update({**env, "CLIPROBE_STAGE_TIMES": str(times)})
    try:
        ran, seconds, _ = repro(project)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    records = [json.loads(line) for line in times.read_text().splitlines()]
    in_commands = sum(r["end"] - r["start"] for r in records)
    return len(ran), seconds, in_commands


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--images", type=int, default=100)
    parse.add_argument("--cells", type=int, default=95)
    parse.add_argument("--arch", default="ViT-B-32")
    parse.add_argument("--data", type=Path, default=IMAGENET_SAMPLE)
    parse.add_argument("--repeats", type=int, default=3, help="no-op runs (best is shown)")
    parse.add_argument("--skip-no-worker", action="store_true",
                       help="skip the third side (every stage in its own process)")
    parse.add_argument("--keep", type=Path, default=None,
                       help="move the swept project here afterwards (to time more no-ops)")
    args = parse.parse_args()
    print(machine())
    print(f"{args.arch} (random weights), first {args.images} images of {args.data.name}, "
          f"{args.cells} of the 95 ImageNet-C cells")
    with tempfile.TemporaryDirectory(prefix="cliprobe-sweep-") as tmp:
        root = Path(tmp)
        workers = root / "w"
        workers.mkdir(mode=0o700)
        os.environ["CLIPROBE_WORKER_DIR"] = str(workers)  # this benchmark's own workers
        try:
            one = sweep_project(root / "one", args.data, args.images, args.cells, args.arch)
            commands = stage_commands(one)
            limit = run_in_one_process(one, commands)
            print(f"one process: {len(commands)} stage commands in {limit:.1f} s")

            dvc = sweep_project(root / "dvc", args.data, args.images, args.cells, args.arch)
            stages, wall, inside = full_repro(dvc)
            print(f"dvc repro:   {stages} stages in {wall:.1f} s "
                  f"(stage commands {inside:.1f} s, DVC {wall - inside:.1f} s)")
            sides = [("dvc repro, warm workers", wall)]
            if not args.skip_no_worker:
                old = sweep_project(root / "old", args.data, args.images, args.cells, args.arch)
                _, old_wall, _ = full_repro(old, CLIPROBE_WORKER="0")
                print(f"no worker:   {stages} stages in {old_wall:.1f} s")
                sides.append(("dvc repro, no worker", old_wall))
            noops = [repro(dvc)[1] for _ in range(args.repeats)]
            lock_lines = (dvc / "dvc.lock").read_text().count("\n")
            if args.keep is not None:
                import shutil

                shutil.move(str(dvc), str(args.keep))
        finally:
            from cliprobe.worker.control import stop_workers

            stop_workers(workers)
    print()
    for name, seconds in sides:
        print(f"{name:26s} / one process: {seconds:7.1f} / {limit:.1f} s = "
              f"{seconds / limit:.2f} (target <= 1.5)")
    share = (wall - inside) / wall
    print(f"DVC outside stage commands: {wall - inside:.1f} of {wall:.1f} s = {share:.1%} "
          "(target <= 10%)")
    print(f"no-op dvc repro, {stages} stages: best {min(noops):.2f} s of {len(noops)} "
          f"({', '.join(f'{t:.2f}' for t in noops)}; target < 3 s); dvc.lock {lock_lines} lines")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
