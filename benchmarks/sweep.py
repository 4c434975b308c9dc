"""The ImageNet-C sweep through DVC against the same work in one process (issue 15, targets 2-3).

    python benchmarks/sweep.py                          # 100 images x 95 cells, ViT-B-32 (long)
    python benchmarks/sweep.py --images 20 --cells 19   # quicker: 19 cells spread over the 95
    python benchmarks/sweep.py --arch cliprobe-smoke --images 12   # the smoke model, 95 cells

Sides, each in a fresh throw-away copy of this project (cliprobe.devtools), random weights:
  one process  every stage command of the pipeline, in DVC's order, run in ONE
               Python process that loads the model once: the limit, with no price per cell;
  dvc repro    the real pipeline, with warm model workers (the default), the cells' stages in
               the 16 sub-pipelines pipelines/cells-*/dvc.yaml;
  one file     the same with every cell's stages back in dvc.yaml (one dvc.lock: the layout
               before pipelines/), unless --skip-one-file;
  no worker    the real pipeline with CLIPROBE_WORKER=0 (every stage in its own process: how
               sweeps ran before), unless --skip-no-worker.
Then a no-op `dvc repro` of each swept project (best of --repeats), and DVC's own share of each
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
from cliprobe.config.cell_shards import cell_shards, shard_pipeline
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
    composed["cell_shards"] = cell_shards(composed["manipulation"])  # as composition would
    (project / "params.yaml").write_text(to_yaml(composed))
    return project


def one_file_layout(project: Path) -> None:
    """Put the cells' stages back into the project's dvc.yaml (one lock file for all)."""
    import shutil

    import yaml

    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    cells = yaml.safe_load(shard_pipeline(0))["stages"]
    for stage in cells.values():
        stage.pop("wdir")
        stage["matrix"]["manipulation"] = "${manipulation}"
    pipeline["stages"].update(cells)
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False, width=1000))
    shutil.rmtree(project / "pipelines")


def lock_lines(project: Path) -> tuple[int, int]:
    """(lines of all the project's dvc.lock files, lines of the largest)."""
    counts = [lock.read_text().count("\n") for lock in
              [project / "dvc.lock", *(project / "pipelines").glob("*/dvc.lock")]
              if lock.is_file()]
    return sum(counts), max(counts)


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
                       help="skip the side with every stage in its own process")
    parse.add_argument("--skip-one-file", action="store_true",
                       help="skip the side with every cell's stages in dvc.yaml")
    parse.add_argument("--keep", type=Path, default=None,
                       help="move the swept project here afterwards (to time more no-ops)")
    args = parse.parse_args()
    print(machine())
    print(f"{args.arch} (random weights), first {args.images} images of {args.data.name}, "
          f"{args.cells} of the 95 ImageNet-C cells")
    runs: list[tuple[str, int, float, float, list[float], tuple[int, int]]] = []
    with tempfile.TemporaryDirectory(prefix="cliprobe-sweep-") as tmp:
        root = Path(tmp)
        workers = root / "w"
        workers.mkdir(mode=0o700)
        os.environ["CLIPROBE_WORKER_DIR"] = str(workers)  # this benchmark's own workers
        try:
            one = sweep_project(root / "one", args.data, args.images, args.cells, args.arch)
            commands = stage_commands(one)
            limit = run_in_one_process(one, commands)
            print(f"one process: {len(commands)} stage commands in {limit:.1f} s", flush=True)

            sides = [("dvc repro, 16 cell files", "dvc", {}, False)]
            if not args.skip_one_file:
                sides.append(("dvc repro, one dvc.yaml", "single", {}, True))
            if not args.skip_no_worker:
                sides.append(("dvc repro, no worker", "old", {"CLIPROBE_WORKER": "0"}, False))
            for name, folder, env, single in sides:
                project = sweep_project(root / folder, args.data, args.images, args.cells,
                                        args.arch)
                if single:
                    one_file_layout(project)
                stages, wall, inside = full_repro(project, **env)
                print(f"{name}: {stages} stages in {wall:.1f} s (stage commands "
                      f"{inside:.1f} s, DVC {wall - inside:.1f} s)", flush=True)
                noops = [repro(project)[1] for _ in range(args.repeats)]
                print(f"{name}: no-op dvc repro best {min(noops):.2f} s of {len(noops)}",
                      flush=True)
                runs.append((name, stages, wall, inside, noops, lock_lines(project)))
                if folder == "dvc" and args.keep is not None:
                    import shutil

                    shutil.copytree(project, args.keep, symlinks=True)
        finally:
            from cliprobe.worker.control import stop_workers

            stop_workers(workers)
    print()
    for name, stages, wall, inside, noops, (lines, largest) in runs:
        print(f"{name}:")
        print(f"  full run / one process: {wall:7.1f} / {limit:.1f} s = {wall / limit:.2f} "
              "(target <= 1.5)")
        print(f"  DVC outside stage commands: {wall - inside:.1f} of {wall:.1f} s = "
              f"{(wall - inside) / wall:.1%} (target <= 10%); per stage "
              f"{(wall - inside) / stages:.2f} s")
        print(f"  no-op dvc repro, {stages} stages: best {min(noops):.2f} s of {len(noops)} "
              f"({', '.join(f'{t:.2f}' for t in noops)}; target < 3 s)")
        print(f"  dvc.lock files: {lines} lines, the largest {largest}")
    if len(runs) > 1 and runs[1][0].endswith("one dvc.yaml"):
        (_, _, wall16, in16, noop16, _), (_, _, wall1, in1, noop1, _) = runs[0], runs[1]
        print(f"16 cell files vs one dvc.yaml: full run {wall16:.1f} / {wall1:.1f} s = "
              f"{wall16 / wall1:.2f}; DVC's own time {wall16 - in16:.1f} / {wall1 - in1:.1f} s "
              f"= {(wall16 - in16) / (wall1 - in1):.2f}; no-op {min(noop16):.2f} / "
              f"{min(noop1):.2f} s = {min(noop16) / min(noop1):.2f}")
    print(machine(load_only=True))


if __name__ == "__main__":
    main()
