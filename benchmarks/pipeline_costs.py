"""Pipeline-level costs (issue 6 targets 3-5), each printed with its baseline and the ratio.

    python benchmarks/pipeline_costs.py sweep    # target 3: 5-manipulation sweep vs re-encoding
    python benchmarks/pipeline_costs.py noop     # target 4: no-op `dvc repro`, 3 datasets x 8
    python benchmarks/pipeline_costs.py memory   # target 5: peak RSS, 1,000 vs 10,000 images

Everything runs in throw-away copies of this project (cliprobe.devtools), through real DVC and
the real stage entry points, offline, with random weights (throughput and memory do not depend
on the weights; no number here is a finding about CLIP).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from cliprobe.devtools import compose_into, make_project, repro

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EIGHT = ["blurred", "cropped", "grey", "gaussian_noise", "brightness", "contrast", "pixelate",
         "jpeg_compression"]


def image_folder(target: Path, source: Path, per_class: int, classes: int) -> Path:
    """A class-folder dataset of real photos copied from ../shared/data/cifar10_test."""
    labels = pd.read_csv(source / "labels.csv")
    for name, group in list(labels.groupby("class_name"))[:classes]:
        (target / name).mkdir(parents=True, exist_ok=True)
        for path in group["path"].head(per_class):
            shutil.copy(source / path, target / name / Path(path).name)
    return target


def noop(args: argparse.Namespace) -> None:
    """Target 4: a no-op `dvc repro` over 3 datasets x 8 manipulations (< 3 s)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root / "project")
        cifar = SHARED / "cifar10_test"
        folders = [image_folder(root / f"d{i}", cifar, 4, 3) for i in (1, 2)]
        # image_folder copies under new names, one per extra dataset
        for i in (1, 2):
            text = (project / "conf/dataset/image_folder.yaml").read_text()
            (project / f"conf/dataset/folder{i}.yaml").write_text(
                text.replace("image_folder:\n", f"folder{i}:\n", 1)
                .replace("data/user/image_folder", str(folders[i - 1])))
        overrides = [args.model, "dataset=[sample,folder1,folder2]",
                     f"manipulation=[{','.join(EIGHT)}]", "retrieval.neighbours=5",
                     "retrieval.recall_k=[1,5]", "embed.num_workers=0"]
        ran, full, _ = repro(project, overrides)
        print(f"full run: {len(ran)} stages in {full:.1f} s")
        times = []
        for _ in range(args.repeats):
            ran, seconds, _ = repro(project)
            assert not ran, ran
            times.append(seconds)
        best = min(times)
        print(f"no-op dvc repro, {len(EIGHT)} manipulations x 3 datasets: "
              f"best {best:.2f} s of {args.repeats} (all: {', '.join(f'{t:.2f}' for t in times)})")
        print(f"ratio to the 3 s target: {best / 3.0:.2f} (target <= 1); "
              f"to the full run: {best / full:.3f}")


def sweep(args: argparse.Namespace) -> None:
    """Target 3: 5 manipulations in one cached pipeline vs one run per manipulation that
    re-encodes the clean images each time (CLIP_benchmark's way)."""
    manipulations = EIGHT[:5]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = image_folder(root / "images", SHARED / "cifar10_test", args.per_class, 10)
        common = [args.model, "dataset=[image_folder]",
                  f"dataset.image_folder.source.path={folder}", "embed.num_workers=0"]
        started = time.perf_counter()
        project = make_project(root / "cached")
        ran, _, _ = repro(project, [*common, f"manipulation=[{','.join(manipulations)}]"])
        cached = time.perf_counter() - started
        print(f"cliprobe, one pipeline: {len(ran)} stages, {cached:.1f} s")
        started = time.perf_counter()
        for name in manipulations:
            fresh = make_project(root / f"fresh-{name}")
            repro(fresh, [*common, f"manipulation=[{name}]"])
        rerun = time.perf_counter() - started
        print(f"re-encoding clean images per manipulation (5 fresh runs): {rerun:.1f} s")
        print(f"speed-up {rerun / cached:.2f}x (target >= 1.5)")


def _peak_rss(command: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS of the process tree in MiB, seconds) of ``command``."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    started = time.perf_counter()
    watcher = psutil.Process(process.pid)

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            try:
                tree = [watcher, *watcher.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=sample)
    thread.start()
    _, stderr = process.communicate()
    thread.join()
    if process.returncode != 0:
        raise RuntimeError(stderr)
    return peak / 2**20, time.perf_counter() - started


def memory(args: argparse.Namespace) -> None:
    """Target 5: peak RSS of the embed stage at 1,000 and 10,000 images (flat within 10%)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for count in (1000, 10000):
            project = make_project(root / f"p{count}")
            folder = image_folder(root / f"img{count}", SHARED / "cifar10_test", count // 10, 10)
            compose_into(project, [args.model, "dataset=[image_folder]",
                                   f"dataset.image_folder.source.path={folder}",
                                   "manipulation=[]", f"embed.num_workers={args.workers}"])
            repro_fetch = ["dvc", "repro", "fetch@image_folder"]
            subprocess.run(repro_fetch, cwd=project, check=True, capture_output=True)
            model = args.model.split("=")[1]
            command = [sys.executable, "-m", "cliprobe.stages.embed", "--model", model,
                       "--dataset", "image_folder", "--manipulation", "original"]
            peak, seconds = _peak_rss(command, project)
            results[count] = peak
            print(f"{count:6d} images: peak RSS {peak:7.1f} MiB, {seconds:.1f} s")
    ratio = results[10000] / results[1000]
    print(f"peak RSS 10,000 / 1,000 images: {ratio:.3f} (target within 0.90-1.10)")
    print(json.dumps({str(k): round(v, 1) for k, v in results.items()}))


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("target", choices=["noop", "sweep", "memory"])
    parse.add_argument("--model", default="model=smoke",
                       help="Hydra override selecting the model (default: the smoke model)")
    parse.add_argument("--repeats", type=int, default=5)
    parse.add_argument("--per-class", type=int, default=20)
    parse.add_argument("--workers", default="0")
    args = parse.parse_args()
    {"noop": noop, "sweep": sweep, "memory": memory}[args.target](args)


if __name__ == "__main__":
    main()
