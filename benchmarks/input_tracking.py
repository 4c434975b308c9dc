"""What tracking a user's image folder costs, and what depending on the manifest saves.

1. The scan stage's listing of a folder of N photos: cold (every file read and hashed) vs warm
   (the digest cache answers; one ``stat`` per file), and a warm run after one photo changed.
2. ``dvc status`` of a toy pipeline of S stages that each depend on the image folder itself
   (as embed / manipulate stages did through ``data/raw/<dataset>``) vs the same S stages
   depending on one small listing file (as they now depend on the manifest), same run.

    python benchmarks/input_tracking.py --files 20000 --stages 20

Uses synthetic files (random bytes of photo-like sizes); no model, no real data needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cliprobe.datasets.content import DigestCache, listing


def make_folder(root: Path, files: int, size: int) -> Path:
    """``files`` random files of ``size`` bytes in 100 class folders."""
    rng = np.random.default_rng(0)
    for index in range(files):
        folder = root / f"class{index % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:06d}.jpg").write_bytes(rng.bytes(size))
    return root


def timed(function) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def scan_costs(folder: Path, cache_file: Path) -> None:
    inputs = {"source.path": str(folder)}
    cold = timed(lambda: (cache := DigestCache(cache_file), listing(inputs, cache),
                          cache.save()))
    warm = timed(lambda: (cache := DigestCache(cache_file), listing(inputs, cache),
                          cache.save()))
    first = next(folder.rglob("*.jpg"))
    first.write_bytes(os.urandom(first.stat().st_size))
    changed = timed(lambda: (cache := DigestCache(cache_file), listing(inputs, cache),
                             cache.save()))
    print(f"scan listing: cold {cold:.2f} s, warm {warm:.2f} s (cold / warm = "
          f"{cold / warm:.1f}x), one photo changed {changed:.2f} s")


def dvc_status_costs(folder: Path, work: Path, stages: int) -> None:
    dvc = str(Path(sys.executable).parent / "dvc")
    timings = {}
    for kind in ("folder", "listing"):
        project = work / kind
        project.mkdir()
        (project / "listing.json").write_text("{}")
        dep = str(folder) if kind == "folder" else "listing.json"
        lines = ["stages:"]
        for index in range(stages):
            lines += [f"  s{index}:", f"    cmd: echo {index} > out{index}.txt",
                      "    deps:", f"      - {dep}", "    outs:", f"      - out{index}.txt"]
        (project / "dvc.yaml").write_text("\n".join(lines) + "\n")
        for command in (["git", "init", "-q"], [dvc, "init", "-q"],
                        [dvc, "config", "core.analytics", "false"], [dvc, "repro", "-q"]):
            subprocess.run(command, cwd=project, check=True, capture_output=True)
        subprocess.run([dvc, "status", "-q"], cwd=project, capture_output=True)  # warm state
        runs = [timed(lambda p=project: subprocess.run([dvc, "status", "-q"], cwd=p,
                                                       capture_output=True)) for _ in range(3)]
        timings[kind] = min(runs)
    print(f"dvc status, {stages} stages: each depending on the {sum(1 for _ in folder.rglob('*'))}"
          f"-entry folder {timings['folder']:.2f} s, on one listing file "
          f"{timings['listing']:.2f} s (ratio {timings['folder'] / timings['listing']:.1f}x; "
          "best of 3)")


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--files", type=int, default=20000)
    parse.add_argument("--size", type=int, default=100_000, help="bytes per file")
    parse.add_argument("--stages", type=int, default=20)
    args = parse.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cliprobe-input-tracking-"))
    try:
        folder = make_folder(work / "photos", args.files, args.size)
        print(f"{args.files} files x {args.size:,} bytes")
        scan_costs(folder, work / "digests.json")
        dvc_status_costs(folder, work, args.stages)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
