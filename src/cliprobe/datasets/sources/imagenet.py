"""The ``imagenet`` source: ImageNet-1k val and its robustness variants, one path each.

- ``val``: the user's own ``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_devkit_t12.tar.gz`` (ImageNet
  needs a login, so cliprobe never downloads it), checked against torchvision's pinned md5s and
  extracted safely into the cache; labels from the devkit's validation ground truth.
- ``v2``: ImageNetV2 matched-frequency, the tarball on the Hugging Face hub (pinned commit and
  sha256); class folders are class indices.
- ``r`` / ``a``: ImageNet-R / ImageNet-A, the authors' tarballs (md5s as published with them);
  class folders are WordNet ids (200 classes each).
- ``sketch``: ImageNet-Sketch, the zip the Hugging Face dataset serves (no published checksum:
  the sha256 of the first download is recorded and checked afterwards); WordNet-id folders.

Class index = position of the WordNet id in the sorted list of the 1000 (timm ships it); class
name = CLIP's cleaned name (open_clip's ``IMAGENET_CLASSNAMES``), with the two names CLIP uses
twice (missile, sunglasses) told apart by their WordNet lemma.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import ImageNetSource
from cliprobe.datasets.download import checksum_note, extract_archive, hash_file, verify_cached
from cliprobe.datasets.sources._common import (
    SourceResult,
    dataset_cache,
    find_class_root,
    images_under,
    link_or_copy,
    local_folder,
    obtain_extracted,
    safe_name,
)
from cliprobe.errors import DataError


@dataclass(frozen=True)
class Variant:
    """Where a variant comes from and how its class folders are named."""

    url: str | None
    sha256: str | None
    md5: str | None
    folders: str  # "wnid" or "index"
    license: str
    description: str


VARIANTS: dict[str, Variant] = {
    "val": Variant(None, None, None, "wnid",
                   "ImageNet terms of access (non-commercial research and education)",
                   "ImageNet-1k (ILSVRC 2012) validation set, 50,000 images"),
    "v2": Variant(
        "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/"
        "d626240be2538720e83103a0e1178d24aca8b12c/imagenetv2-matched-frequency.tar.gz",
        "f0c37fdf925916b19ea1323cd9a2208cdb6959ba2c32eef2a7fc393835c9ca7c", None, "index",
        "MIT (ImageNetV2 release, Recht et al. 2019); images from Flickr",
        "ImageNetV2 matched-frequency, 10,000 images"),
    "r": Variant("https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar", None,
                 "a61312130a589d0ca1a8fca1f2bd3337", "wnid",
                 "MIT (hendrycks/imagenet-r); renditions collected from the web",
                 "ImageNet-R(endition), 30,000 images of 200 classes"),
    "a": Variant("https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar", None,
                 "c3e55429088dc681f30d81f4726b6595", "wnid",
                 "MIT (hendrycks/natural-adv-examples); images collected from the web",
                 "ImageNet-A (natural adversarial examples), 7,500 images of 200 classes"),
    "sketch": Variant(
        "https://huggingface.co/datasets/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip",
        None, None, "wnid",
        "unknown (dataset card); images from Google Image search (Wang et al. 2019)",
        "ImageNet-Sketch, 50,889 sketches of the 1000 classes"),
}

#: torchvision's pinned md5s of the two ImageNet archives the user supplies.
VAL_ARCHIVES = {"ILSVRC2012_img_val.tar": "29b22e2961454d5413ddabcf34fc5622",
                "ILSVRC2012_devkit_t12.tar.gz": "fa75699e90414af021442c21a62c3abf"}


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids in class-index order (sorted), from timm's packaged list."""
    text = (importlib.resources.files("timm.data._info") / "imagenet_synsets.txt").read_text()
    return tuple(text.split())


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """CLIP's 1000 class names, made unique with WordNet lemmas where CLIP repeats a name."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    names = list(IMAGENET_CLASSNAMES)
    lemma_text = (importlib.resources.files("timm.data._info")
                  / "imagenet_synset_to_lemma.txt").read_text()
    lemmas = dict(line.split("\t", 1) for line in lemma_text.splitlines() if "\t" in line)
    wnids = imagenet_wnids()
    counts = Counter(names)
    for index, name in enumerate(list(names)):
        if counts[name] > 1:
            names[index] = lemmas.get(wnids[index], name).split(",")[0].strip()
    still = Counter(names)
    return tuple(f"{n} ({wnids[i]})" if still[n] > 1 else n for i, n in enumerate(names))


def _label_for(folder_name: str, folders: str, dataset: str) -> str:
    wnids, names = imagenet_wnids(), imagenet_class_names()
    if folders == "index":
        if not folder_name.isdigit() or not 0 <= int(folder_name) < len(names):
            raise DataError(f"dataset '{dataset}': class folder {folder_name!r} is not a class "
                            "index 0-999")
        return names[int(folder_name)]
    try:
        return names[wnids.index(folder_name)]
    except ValueError:
        raise DataError(f"dataset '{dataset}': class folder {folder_name!r} is not an ImageNet "
                        "WordNet id (n01440764 ...)") from None


def _class_folder_rows(images: Path, folders: str, dataset: str,
                       target: Path) -> list[dict[str, object]]:
    rows = []
    for class_dir in sorted(p for p in images.iterdir() if p.is_dir()
                            and not p.name.startswith(".")):
        label = _label_for(class_dir.name, folders, dataset)
        index = int(class_dir.name) if folders == "index" else imagenet_wnids().index(
            class_dir.name)
        for file in images_under(class_dir):
            image_id = safe_name(file.relative_to(images).as_posix())
            link_or_copy(file, target / image_id)
            rows.append({"image_id": image_id, "path": image_id, "label": label,
                         "wnid": imagenet_wnids()[index], "imagenet_index": index})
    return rows


def _devkit_labels(devkit: Path, dataset: str) -> list[str]:
    """WordNet ids of the 50,000 validation images, in file-name order, from the devkit."""
    from scipy.io import loadmat

    truth = sorted(devkit.rglob("ILSVRC2012_validation_ground_truth.txt"))
    meta = sorted(devkit.rglob("meta.mat"))
    if not truth or not meta:
        raise DataError(f"dataset '{dataset}': the devkit lacks "
                        "ILSVRC2012_validation_ground_truth.txt or meta.mat; is it "
                        "ILSVRC2012_devkit_t12.tar.gz?")
    synsets = loadmat(meta[0], squeeze_me=True)["synsets"]
    by_id = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets
             if int(s["num_children"]) == 0}
    return [by_id[int(line)] for line in truth[0].read_text().split()]


def _val_rows(source: ImageNetSource, dataset: str, target: Path) -> tuple[list[dict], list[str]]:
    folder = local_folder(str(source.archive_dir), dataset,
                          "the folder holding ILSVRC2012_img_val.tar and the devkit")
    notes, extracted = [], {}
    for name, md5 in VAL_ARCHIVES.items():
        archive = folder / name
        if not archive.is_file():
            raise DataError(
                f"dataset '{dataset}' (ImageNet val) needs {name} in {folder}; download it from "
                f"image-net.org (a login is required) into dataset.{dataset}.source.archive_dir, "
                f"or set dataset.{dataset}.source.local_dir to a folder of WordNet-id class "
                f"folders"
            )
        verified = verify_cached(archive, md5=md5)
        if verified is None:
            got = hash_file(archive)[1]
            raise DataError(f"dataset '{dataset}': {archive} has md5 {got[:12]}..., not the "
                            f"ImageNet release's {md5[:12]}...; use the original archive")
        notes.append(f"{name} md5:{md5} (pinned)")
        extracted[name] = extract_archive(
            archive, dataset_cache(source.cache_dir, "extracted",
                                   f"{name.split('.')[0]}-{verified.sha256[:12]}"),
            dataset=dataset, archive_sha256=verified.sha256)
    wnids = _devkit_labels(extracted["ILSVRC2012_devkit_t12.tar.gz"], dataset)
    files = images_under(extracted["ILSVRC2012_img_val.tar"])
    if len(files) != len(wnids):
        raise DataError(f"dataset '{dataset}': the val archive holds {len(files)} images but the "
                        f"devkit labels {len(wnids)}; are both from ILSVRC 2012?")
    order, names = imagenet_wnids(), imagenet_class_names()
    rows = []
    for file, wnid in zip(files, wnids, strict=True):
        index = order.index(wnid)
        image_id = f"{wnid}/{safe_name(file.name)}"
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": names[index],
                     "wnid": wnid, "imagenet_index": index})
    return rows, notes


def fetch_imagenet(source: ImageNetSource, dataset: str, target: Path) -> SourceResult:
    """ImageNet val or a variant, labelled with CLIP's class names and the WordNet id."""
    variant = VARIANTS[source.variant]
    notes: list[str] = []
    origin = variant.description
    if source.local_dir:
        root = local_folder(source.local_dir, dataset, f"an extracted copy of {origin}")
        rows = _class_folder_rows(find_class_root(root, None, dataset), variant.folders,
                                  dataset, target)
    elif source.variant == "val":
        if not source.archive_dir:
            raise DataError(
                f"dataset '{dataset}' (ImageNet val) cannot be downloaded (image-net.org needs "
                f"a login); set dataset.{dataset}.source.archive_dir to the folder holding "
                f"ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz, or "
                f"dataset.{dataset}.source.local_dir to WordNet-id class folders"
            )
        rows, notes = _val_rows(source, dataset, target)
    else:
        # an own url brings its own pins; the default url comes with cliprobe's
        url = source.url or variant.url
        sha256 = source.sha256 or (None if source.url else variant.sha256)
        md5 = source.md5 or (None if source.url else variant.md5)
        root, verified = obtain_extracted(
            dataset, what=f"the {origin} archive", url=url, sha256=sha256, md5=md5,
            filename=source.filename, cache_dir=source.cache_dir,
            timeout=source.timeout, retries=source.retries)
        notes.append(f"{verified.path.name} {checksum_note(verified)}")
        origin = f"{origin}: {url}"
        rows = _class_folder_rows(find_class_root(root, None, dataset), variant.folders,
                                  dataset, target)
    if not rows:
        raise DataError(f"dataset '{dataset}': no images found for ImageNet {source.variant}")
    info: dict[str, object] = {"source": origin, "license": variant.license,
                               "split": "val" if source.variant == "val" else "test",
                               "checksums": notes,
                               "class_names_from": "open_clip IMAGENET_CLASSNAMES (CLIP's)",
                               # ImageNet-R / -A hold 200 of the classes: those present are all
                               "all_classes": (sorted({str(r["label"]) for r in rows})
                                               if source.variant in ("r", "a")
                                               else list(imagenet_class_names())),
                               "class_order": list(imagenet_class_names())}
    return pd.DataFrame(rows), info
