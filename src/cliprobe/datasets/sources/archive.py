"""The ``archive`` source: a tar/zip archive (URL + checksums) in class-folder, flat or
labels-file layout. MiniPlaces, the Brueghel paintings and the ArtPhoto emotions use it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cliprobe.config.schema import ArchiveSource
from cliprobe.datasets.download import checksum_note, file_name_from_url, verify_cached
from cliprobe.datasets.sources._common import (
    SourceResult,
    class_folder_pairs,
    find_class_root,
    images_under,
    is_within,
    label_from_stem,
    link_or_copy,
    local_folder,
    obtain_extracted,
    obtain_file,
    read_class_names,
    read_labels_file,
    rows_from_pairs,
    safe_name,
)
from cliprobe.errors import DataError


def _extra_files(source: ArchiveSource, dataset: str,
                 root: Path) -> tuple[dict[str, Path], list[str]]:
    """The extra files: from ``local_dir`` when it holds them, else downloaded (cached)."""
    files, notes = {}, []
    for extra in source.extra_files:
        name = extra.filename or file_name_from_url(extra.url)
        local = root / name
        if source.local_dir and local.is_file():
            checked = verify_cached(local, extra.sha256, extra.md5)
            if checked is None:
                raise DataError(f"dataset '{dataset}': {local} does not match the pinned "
                                f"checksum of {name}; restore the original file")
            files[name] = local
            notes.append(f"{name} {checksum_note(checked)}")
            continue
        verified = obtain_file(dataset, f"the file {extra.filename or extra.url}", extra.url,
                               sha256=extra.sha256, md5=extra.md5, filename=extra.filename,
                               cache_dir=source.cache_dir, timeout=source.timeout,
                               retries=source.retries)
        files[name] = verified.path
        notes.append(f"{verified.path.name} {checksum_note(verified)}")
    return files, notes


def _resolve(name: str, extras: dict[str, Path], root: Path, dataset: str, option: str) -> Path:
    if name in extras:
        return extras[name]
    for candidate in (root / name, *(p / name for p in sorted(root.iterdir()) if p.is_dir())):
        if candidate.is_file():
            return candidate
    raise DataError(f"dataset '{dataset}': {name} is neither an extra file nor in the archive "
                    f"({root}); fix dataset.{dataset}.source.{option}")


def _labels_file_rows(source: ArchiveSource, dataset: str, root: Path, images: Path,
                      extras: dict[str, Path], target: Path) -> pd.DataFrame:
    labels_path = _resolve(str(source.labels_file), extras, root, dataset, "labels_file")
    pairs = read_labels_file(labels_path, source.labels_format, dataset)
    names = (read_class_names(_resolve(source.class_names_file, extras, root, dataset,
                                       "class_names_file"))
             if source.class_names_file else None)
    rows = []
    for relative, raw_label in pairs:
        file = images / relative
        if not is_within(images, file):
            raise DataError(f"dataset '{dataset}': {labels_path.name} lists {relative!r}, a path "
                            f"outside {images}; refusing it")
        if not file.is_file():
            raise DataError(f"dataset '{dataset}': {labels_path.name} lists {relative}, which "
                            f"is not under {images}; check source.subdir and the archive")
        label = raw_label
        if names is not None:
            if raw_label not in names:
                raise DataError(f"dataset '{dataset}': label {raw_label!r} of {relative} is not "
                                f"in {source.class_names_file}")
            label = names[raw_label]
        image_id = safe_name(Path(relative).as_posix())
        link_or_copy(file, target / image_id)
        rows.append({"image_id": image_id, "path": image_id, "label": label})
    return pd.DataFrame(rows, columns=["image_id", "path", "label"])


def _flat_rows(source: ArchiveSource, dataset: str, images: Path,
               target: Path) -> pd.DataFrame:
    pairs, unlabelled = [], []
    for file in images_under(images):
        label = label_from_stem(file.stem, source.label_regex)
        if label is None:
            unlabelled.append(file.name)
        else:
            pairs.append((file, label))
    if unlabelled and not pairs:
        raise DataError(f"dataset '{dataset}': no file name under {images} matches "
                        f"source.label_regex (first: {unlabelled[0]}); fix the pattern")
    return rows_from_pairs(pairs, images, target)


def fetch_archive(source: ArchiveSource, dataset: str, target: Path) -> SourceResult:
    """Images of an archive (downloaded, local, or already extracted) linked into ``target``."""
    notes: list[str] = []
    if source.local_dir:
        root = local_folder(source.local_dir, dataset, "the extracted archive")
        origin = "a local copy of " + (source.url or "the archive")
    else:
        root, verified = obtain_extracted(
            dataset, what=f"the archive {source.filename or source.url}", url=source.url,
            sha256=source.sha256, md5=source.md5, filename=source.filename,
            cache_dir=source.cache_dir, timeout=source.timeout, retries=source.retries,
            archive_path=source.archive_path,
            hint=f"download it yourself and set dataset.{dataset}.source.archive_path")
        origin = source.url or f"the local archive {verified.path.name}"
        notes.append(f"{verified.path.name} {checksum_note(verified)}")
    extras, extra_notes = _extra_files(source, dataset, root)
    images = find_class_root(root, source.subdir, dataset)
    if source.layout == "labels_file":
        rows = _labels_file_rows(source, dataset, root, images, extras, target)
    elif source.layout == "flat":
        rows = _flat_rows(source, dataset, images, target)
    else:
        rows = rows_from_pairs(class_folder_pairs(images), images, target)
    if rows.empty:
        raise DataError(f"dataset '{dataset}': no images found in {images} with layout "
                        f"{source.layout}; check dataset.{dataset}.source.subdir and layout")
    info: dict[str, object] = {"source": origin, "split": source.split,
                               "checksums": [*notes, *extra_notes]}
    return rows, info
