"""Stage fetch@<dataset>: materialise a dataset's images and write its manifest.

The manifest records the sha256 of every image (``sha256`` column): the embedding stages depend
on the manifest rather than on the image folder, and key their resumable chunks by it.
With ``probe_train`` it also materialises the official train (+ validation) split into the
same raw folder and writes its own manifest (``<dataset>.train_split.parquet``, empty with the
reason otherwise) for the literature linear probe. The manifest's info records
``class_names`` (the classes present after subsampling), ``all_classes`` (the dataset's full
label set, before subsampling) and ``class_order`` (the labels in the source's class-index
order), so the classifier can keep every class.
"""

from __future__ import annotations

import shutil
import sys

import pandas as pd

from cliprobe import paths
from cliprobe.config.stage_params import load_stage_params
from cliprobe.datasets.captions import captions_table, write_captions
from cliprobe.datasets.content import DigestCache
from cliprobe.datasets.manifest import REQUIRED_COLUMNS, build_manifest, write_manifest
from cliprobe.datasets.sources import attach_extras, materialise, materialise_train_split
from cliprobe.datasets.subsample import subsample
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.stages._common import parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "", "dataset").parse_args(argv)
    params = load_stage_params("fetch", args.params, dataset=args.dataset)
    config = params.dataset[args.dataset]
    target = paths.raw_dir(args.dataset)
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows, info = materialise(config, args.dataset, staging)
    # the full label set and the source's class order, before subsampling drops classes
    all_classes = sorted({*map(str, info.pop("all_classes", [])), *map(str, rows["label"])}
                         - {""})  # caption datasets' images have no class
    class_order = [str(x) for x in info.pop("class_order", [])] or all_classes
    rows = subsample(rows, config.subsample)
    if rows.empty:
        raise DataError(f"dataset '{args.dataset}': subsampling left no images")
    train_rows, train_info = materialise_train_split(config, args.dataset, staging)
    shared = set(rows["image_id"]) & set(train_rows["image_id"])
    if shared:
        raise DataError(f"dataset '{args.dataset}': the train split shares {len(shared)} images "
                        f"with the evaluated split (first: {sorted(shared)[0]}); fix "
                        f"dataset.{args.dataset}.probe_train")
    keep = set(rows["path"]) | set(train_rows["path"])
    for file in sorted(p for p in staging.rglob("*") if p.is_file()):
        if file.relative_to(staging).as_posix() not in keep:
            file.unlink()
    info = {**info, **attach_extras(config, args.dataset, rows, staging)}
    # Swap the folder in only when complete: a killed fetch never leaves half a dataset.
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    # digests the scan stage computed for the files linked here are found by inode, not re-read
    digests = DigestCache(paths.DIGEST_CACHE / f"{args.dataset}.json")
    rows = rows.assign(sha256=[digests.sha256(target / path) for path in rows["path"]])
    train_rows = train_rows.assign(sha256=[digests.sha256(target / path)
                                           for path in train_rows["path"]])
    # a caption dataset's captions go to the companion table (every dataset gets one)
    captions = captions_table(zip(rows["image_id"], rows["captions"], strict=True)
                              if "captions" in rows else [])
    manifest = build_manifest(rows.drop(columns=["captions"], errors="ignore"),
                              split=str(info.get("split", "all")))
    classes = sorted(label for label in manifest["label"].unique() if label)
    write_captions(captions, paths.captions_path(args.dataset),
                   {"dataset": args.dataset, "n_captions": len(captions),
                    "n_images": int(captions["image_id"].nunique())})
    write_manifest(manifest, paths.manifest_path(args.dataset),
                   {**info, "dataset": args.dataset, "class_names": classes,
                    "all_classes": all_classes, "class_order": class_order,
                    "n_captions": len(captions), "subsample": config.subsample.model_dump()})
    train_manifest = (build_manifest(train_rows) if not train_rows.empty
                      else pd.DataFrame({column: pd.Series(dtype="int64" if column ==
                                                           "class_index" else "object")
                                         for column in REQUIRED_COLUMNS}))
    write_manifest(train_manifest, paths.train_manifest_path(args.dataset),
                   {**train_info, "dataset": args.dataset})
    described = (f"{len(captions)} captions" if len(captions) else f"{len(classes)} classes")
    print(f"fetch {args.dataset}: {len(manifest)} images, {described} -> {target}, "
          f"{paths.manifest_path(args.dataset)}", file=sys.stderr)


if __name__ == "__main__":
    main()
