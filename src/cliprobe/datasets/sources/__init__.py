"""Dataset sources: each materialises images into the dataset's raw folder and lists them.

One module and one function per source kind, chosen by ``source.kind`` in the dataset config
(:data:`SOURCES`). A source returns rows (``image_id``, ``path``, ``label``, optional extra columns
such as ``split`` or the Oxford query boxes) and an info dict (source, license, checksums, split).
Downloads go through :mod:`cliprobe.datasets.download` (cache, checksums, resume, retries, safe
extraction). :func:`materialise` adds what the dataset config records (license, version, default
prompt set) and renames classes with ``label_map``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.download import sha256_file
from cliprobe.datasets.sources._common import IMAGE_SUFFIXES, SourceResult
from cliprobe.datasets.sources.archive import fetch_archive
from cliprobe.datasets.sources.captions import fetch_captions, fetch_captions_folder
from cliprobe.datasets.sources.image_folder import fetch_image_folder
from cliprobe.datasets.sources.imagenet import fetch_imagenet
from cliprobe.datasets.sources.kaggle import fetch_kaggle
from cliprobe.datasets.sources.oxford_paris import fetch_oxford_paris
from cliprobe.datasets.sources.sample import fetch_sample
from cliprobe.datasets.sources.torchvision_sets import fetch_torchvision
from cliprobe.datasets.sources.typographic import (
    TYPOGRAPHIC_LICENSE,
    default_cache_dir,
    fetch_typographic_in_the_wild,
    load_typographic_manifest,
    typographic_row,
)
from cliprobe.datasets.sources.url_list import fetch_url_list

__all__ = [
    "IMAGE_SUFFIXES",
    "SOURCES",
    "TYPOGRAPHIC_LICENSE",
    "SourceResult",
    "attach_extras",
    "default_cache_dir",
    "fetch_archive",
    "fetch_captions",
    "fetch_captions_folder",
    "fetch_image_folder",
    "fetch_imagenet",
    "fetch_kaggle",
    "fetch_oxford_paris",
    "fetch_sample",
    "fetch_torchvision",
    "fetch_typographic_in_the_wild",
    "fetch_url_list",
    "load_typographic_manifest",
    "materialise",
    "materialise_train_split",
    "sha256_file",
    "typographic_row",
]

SOURCES: dict[str, Callable[..., SourceResult]] = {
    "sample": fetch_sample,
    "image_folder": fetch_image_folder,
    "typographic_in_the_wild": fetch_typographic_in_the_wild,
    "kaggle": fetch_kaggle,
    "archive": fetch_archive,
    "oxford_paris": fetch_oxford_paris,
    "torchvision": fetch_torchvision,
    "imagenet": fetch_imagenet,
    "url_list": fetch_url_list,
    "captions": fetch_captions,
    "captions_folder": fetch_captions_folder,
}


#: Why a dataset has no train-split manifest rows (written into the empty manifest's info).
NO_TRAIN_SPLIT = ("no official train split configured (dataset.<name>.probe_train is null): "
                  "the literature linear probe is skipped")


def materialise_train_split(config: DatasetConfig, dataset: str,
                            target: Path) -> SourceResult:
    """The official train split (``split`` = ``train``) and validation split (``val``, when
    the dataset publishes one) of ``config.probe_train``, written under ``target`` beside the
    evaluated split's images; no rows (and the reason) without ``probe_train``."""
    from cliprobe.config.schema import SubsampleConfig
    from cliprobe.datasets.subsample import subsample

    settings = config.probe_train
    if settings is None:
        return pd.DataFrame(columns=["image_id", "path", "label"]), {"probe_train": NO_TRAIN_SPLIT}
    parts, splits = [], {}
    for role, split in (("train", settings.split), ("val", settings.val_split)):
        if split is None:
            continue
        source = config.source.model_copy(update={"split": split})
        rows, _ = materialise(config.model_copy(update={"source": source, "probe_train": None}),
                              dataset, target)
        if settings.per_class is not None:
            rows = subsample(rows, SubsampleConfig(per_class=settings.per_class,
                                                   seed=settings.seed))
        parts.append(rows.assign(split=role))
        splits[role] = {"split": split, "images": len(rows)}
    rows = pd.concat(parts, ignore_index=True)
    validation = (f"the official {settings.val_split} split" if settings.val_split else
                  f"a seeded stratified {settings.val_fraction:g} of the train split")
    return rows, {"probe_train": {"splits": splits, "validation": validation,
                                  "per_class": settings.per_class}}


def attach_extras(config: DatasetConfig, dataset: str, rows: pd.DataFrame,
                  target: Path) -> dict[str, object]:
    """Files a dataset keeps beside its images, for the rows left after subsampling (the
    released ImageNet-C images of ImageNet val); the info to add to the manifest."""
    source = config.source
    if getattr(source, "imagenet_c", None) is None:
        return {}
    from cliprobe.datasets.sources.imagenet_c import fetch_released

    return fetch_released(source.imagenet_c, [str(i) for i in rows["image_id"]], target,
                          dataset)


def materialise(config: DatasetConfig, dataset: str, target: Path) -> SourceResult:
    """Run the source named by ``config.source.kind``, writing images under ``target``.

    A source may list its classes in ``info``: ``all_classes`` (the full label set, when some
classes can have no image here) and ``class_order`` (labels in the source's class-index
order, which prompt data with ``match: position`` relies on). Then apply ``config.label_map``
(to those lists too) and record the config's license, version and prompt set in
    the info (a config's license note replaces the source's own).
    """
    rows, info = SOURCES[config.source.kind](config.source, dataset, target)
    if config.label_map and not rows.empty:
        rows = rows.assign(label=rows["label"].map(lambda x: config.label_map.get(x, x)))
        for key in ("all_classes", "class_order"):
            if key in info:
                info[key] = [config.label_map.get(x, x) for x in info[key]]
    extra = {"license": config.license, "version": config.version, "prompts": config.prompts}
    info = {**info, **{key: value for key, value in extra.items() if value is not None}}
    return rows, info
