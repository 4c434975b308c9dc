"""cliprobe's zero-shot numbers against LAION's CLIP_benchmark, both under their defaults.

Same random-weight checkpoint file on both sides, same images, no custom templates or class
names on either side: cliprobe runs its real pipeline (fetch -> embed -> classifier ->
score_original) in a throw-away DVC project with its default prompt set (`dataset`: CIFAR-10's
18 CLIP templates; ImageNet's 80 templates and OpenAI's class names); CLIP_benchmark runs its own
CLI (``clip_benchmark eval``) from a separate installation (never a dependency of cliprobe). The
script prints acc@1, acc@5 and mean per-class recall of both, their differences, and the largest
difference between the two text classifiers (CLIP_benchmark's ``--save_clf``), and exits 1 when
a metric differs by more than 1e-6 or the classifiers by more than 1e-5.

Data layouts (made by the caller, outside the project):
- cifar10: ``--images`` = a folder of class folders of JPEGs (cliprobe's ``image_folder``) and
  ``--clip-benchmark-root`` a torchvision CIFAR-10 root holding the same images' pixels;
  CLIP_benchmark reads it with torchvision's md5 check skipped (the pixels are the JPEGs',
  not the original batch files) through ``--clip-benchmark-cli``, a 4-line wrapper that
  patches ``torchvision.datasets.cifar.check_integrity`` and calls ``clip_benchmark.cli.main``;
- imagenet: ``--images`` = ``<root>/val`` of WordNet-id class folders, read by cliprobe's
  ``imagenet_val`` (``local_dir``) and by CLIP_benchmark's ``imagenet1k-unverified``.

    python benchmarks/compare_clip_benchmark.py cifar10 --checkpoint ckpt.pt \\
        --images cb-data/cifar10-jpeg --clip-benchmark-root cb-data/cifar10 \\
        --clip-benchmark-python /work/ext/cb-venv/bin/python --clip-benchmark-cli cb_eval.py

``--arch cliprobe-smoke --model-name smoke`` compares on cliprobe's tiny architecture (the
1000-class ImageNet run's 80,000 prompts take minutes instead of hours on a CPU): the script
then sets ``CLIPROBE_CONFIGS`` to cliprobe's open_clip config folder for the CLIP_benchmark
process, whose wrapper must register it (``open_clip.add_model_config``) before calling
``clip_benchmark.cli.main``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cliprobe.devtools import compose_into, make_project

METRICS = {"zeroshot_acc1": "acc1", "zeroshot_acc5": "acc5",
           "zeroshot_mean_per_class_recall": "mean_per_class_recall"}
SETUPS = {
    # name: (cliprobe dataset, overrides, CLIP_benchmark dataset)
    "cifar10": ("image_folder", ["dataset.image_folder.source.path={images}",
                                 "+dataset.image_folder.prompts=clip_cifar10"], "cifar10"),
    "imagenet": ("imagenet_val", ["dataset.imagenet_val.source.local_dir={images}"],
                 "imagenet1k-unverified"),
}


def run_clip_benchmark(args: argparse.Namespace, out: Path) -> tuple[dict, Path, list[str]]:
    """CLIP_benchmark's metrics, the path of its saved classifier, and its command."""
    _, _, cb_dataset = SETUPS[args.dataset]
    result, clf = out / f"result_{cb_dataset}.json", out / f"clf_{cb_dataset}.pt"
    command = [args.clip_benchmark_python, args.clip_benchmark_cli, "eval",
               "--dataset", cb_dataset, "--dataset_root", str(args.clip_benchmark_root),
               "--task", "zeroshot_classification", "--model", args.arch,
               "--pretrained", str(args.checkpoint), "--no_amp", "--num_workers", "1",
               "--batch_size", "64", "--save_clf", str(clf), "--output", str(result),
               "--dump_classnames", "--dump_templates"]
    env = {**os.environ}
    if args.arch == "cliprobe-smoke":  # the wrapper registers cliprobe's own config
        from cliprobe.models.loader import CONFIG_DIR

        env["CLIPROBE_CONFIGS"] = str(CONFIG_DIR)
    if not (result.is_file() and clf.is_file()):
        subprocess.run(command, check=True, cwd=out, env=env)
    return json.loads(result.read_text()), clf, command


def run_cliprobe(args: argparse.Namespace, project: Path) -> tuple[dict, Path, list[str]]:
    """cliprobe's original-cell metrics.json, its classifier file, and its overrides."""
    dataset, extra, _ = SETUPS[args.dataset]
    overrides = [f"model={args.model_name}",
                 f"model.{args.model_name}.pretrained={args.checkpoint}", f"dataset=[{dataset}]",
                 *(o.format(images=args.images) for o in extra),
                 "manipulation=[]", "embed.num_workers=0", f"embed.batch_size={args.batch_size}",
                 "stats.bootstrap_resamples=0"]
    if not (project / "dvc.yaml").is_file():
        make_project(project)
    compose_into(project, overrides)
    stage = f"score_original@{args.model_name}-{dataset}"
    env = {**os.environ, "CLIPROBE_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    if not args.no_repro:
        subprocess.run(["dvc", "repro", stage], cwd=project, env=env, check=True)
    cell = project / "data" / "cells" / args.model_name / dataset / "original" / "metrics.json"
    classifier = project / "data" / "classifiers" / args.model_name / f"{dataset}.parquet"
    return json.loads(cell.read_text()), classifier, overrides


def classifier_difference(args: argparse.Namespace, ours: Path, theirs: Path,
                          classnames: list[str]) -> tuple[float, int]:
    """Largest |difference| between the two (D, C) classifiers, columns matched by class."""
    import torch

    table = pq.read_table(ours)
    labels = [str(x) for x in table.column("class_name").to_pylist()]
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    theirs_matrix = torch.load(theirs, map_location="cpu", weights_only=True).float().numpy()
    if args.dataset == "imagenet":
        from cliprobe.datasets.sources.imagenet import imagenet_class_names

        order = list(imagenet_class_names())  # CLIP_benchmark: ImageNet class-index order
    else:
        order = classnames                     # CIFAR-10's class order (= its names)
    position = {label: i for i, label in enumerate(labels)}
    ours_matrix = np.stack([vectors[position[label]] for label in order], axis=1)
    return float(np.abs(ours_matrix - theirs_matrix).max()), len(order)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(SETUPS))
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--clip-benchmark-root", type=Path, required=True)
    parser.add_argument("--clip-benchmark-python", default="/work/ext/cb-venv/bin/python")
    parser.add_argument("--clip-benchmark-cli", default="/work/ext/cb_eval.py")
    parser.add_argument("--clip-benchmark-out", type=Path, default=Path("/work/ext/cb-out"))
    parser.add_argument("--project", type=Path, default=None,
                        help="the throw-away cliprobe project (kept, so reruns reuse its cache)")
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--model-name", default="ViT-B-32", help="a conf/model entry of arch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-repro", action="store_true",
                        help="read the outputs already in --project (no dvc repro)")
    args = parser.parse_args()
    args.clip_benchmark_out.mkdir(parents=True, exist_ok=True)
    project = args.project or args.clip_benchmark_out / f"cliprobe-{args.dataset}"

    started = time.perf_counter()
    theirs, theirs_clf, command = run_clip_benchmark(args, args.clip_benchmark_out)
    cb_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours, ours_clf, overrides = run_cliprobe(args, project)
    ours_seconds = time.perf_counter() - started

    print(f"CLIP_benchmark: {' '.join(command)}")
    print(f"cliprobe: overrides {' '.join(overrides)}; dvc repro in {project}")
    print(f"images: {ours['n_images']} (skipped {ours['n_skipped']}); classes: "
          f"{ours['zeroshot']['n_classes']}; prompts: {ours['zeroshot']['dataset_prompts']}, "
          f"{ours['zeroshot']['n_templates']} templates")
    worst = 0.0
    print(f"{'metric':32s} {'cliprobe':>22s} {'CLIP_benchmark':>22s} {'|diff|':>10s}")
    for ours_name, theirs_name in METRICS.items():
        a = float(ours["metrics"][ours_name]["value"])
        b = float(theirs["metrics"][theirs_name])
        worst = max(worst, abs(a - b))
        print(f"{ours_name:32s} {a!r:>22s} {b!r:>22s} {abs(a - b):10.2e}")
    clf_diff, n_classes = classifier_difference(args, ours_clf, theirs_clf,
                                                theirs.get("classnames") or [])
    print(f"text classifier ({n_classes} classes): max |diff| {clf_diff:.2e}")
    print(f"wall seconds (this run; cached sides take ~0): CLIP_benchmark {cb_seconds:.0f}, "
          f"cliprobe {ours_seconds:.0f}")
    ok = worst <= 1e-6 and clf_diff <= 1e-5
    print("EQUAL within 1e-6 (metrics) and 1e-5 (classifier)" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
