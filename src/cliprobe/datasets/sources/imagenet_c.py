"""The released ImageNet-C images (Hendrycks & Dietterich 2019), fetched with ImageNet val.

The official set is five tarballs on Zenodo (record 2235448), one per family: ``noise.tar``,
``blur.tar``, ``weather.tar``, ``digital.tar``, ``extra.tar``. Each holds
``<corruption>/<severity>/<wnid>/<file>.JPEG`` for the 50,000 validation images, written by
``make_imagenet_c.py`` (Resize 256, CenterCrop 224, corrupt, ``np.uint8``, JPEG quality 85).
Zenodo publishes no checksum cliprobe could pin offline: the sha256 of the first download is
recorded and enforced afterwards.

:func:`fetch_released` runs in the fetch stage *after* subsampling, so only the released files
of the validation images the manifest keeps are taken: from a folder of the tarballs
(``archive_dir``, read member by member, never extracted wholesale), an extracted copy
(``local_dir``) or a download. They are stored in the dataset's raw folder under
``imagenet_c/`` (tracked by DVC with the dataset), where the ``imagenet_c_released``
manipulation finds them by :func:`released_path`.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable
from pathlib import Path

from cliprobe.config.schema import ImageNetCReleased
from cliprobe.datasets.download import checksum_note
from cliprobe.datasets.sources._common import link_or_copy, local_folder, obtain_file
from cliprobe.errors import DataError

#: Folder of the released images inside the dataset's raw folder.
RELEASED_FOLDER = "imagenet_c"

#: The tarball each corruption is in.
FAMILY_OF: dict[str, str] = {
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise"), "noise"),
    **dict.fromkeys(("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"), "blur"),
    **dict.fromkeys(("snow", "frost", "fog", "brightness"), "weather"),
    **dict.fromkeys(("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
                    "digital"),
    **dict.fromkeys(("speckle_noise", "gaussian_blur", "spatter", "saturate"), "extra"),
}

#: ``[prefix/]<corruption>/<severity>/<wnid>/<file>`` inside a tarball or an extracted copy.
MEMBER = re.compile(r"^(?:.*/)?(?P<corruption>[a-z_]+)/(?P<severity>[1-5])/"
                    r"(?P<wnid>n\d{8})/(?P<file>[^/]+\.(?:jpe?g|JPE?G|png|PNG))$")


def released_path(root: Path, corruption: str, severity: int, image_id: str) -> Path:
    """Where the released image of ``image_id`` (``<wnid>/<file>``) is kept under the
    dataset's raw folder ``root``."""
    return root / RELEASED_FOLDER / corruption / str(severity) / image_id


def _wanted(config: ImageNetCReleased, image_ids: Iterable[str]) -> set[tuple[str, int, str]]:
    ids = set(image_ids)
    return {(c, s, image_id) for c in config.corruptions for s in config.severities
            for image_id in ids}


def _from_tarballs(tarballs: dict[str, Path], wanted: set[tuple[str, int, str]],
                   target: Path) -> int:
    """Copy the wanted members out of the tarballs (regular files only); how many."""
    found = 0
    for family, tarball in tarballs.items():
        with tarfile.open(tarball, "r|*") as archive:  # streamed: read once, in order
            for member in archive:
                match = MEMBER.match(member.name)
                if match is None or not member.isreg() or FAMILY_OF.get(
                        match["corruption"]) != family:
                    continue
                key = (match["corruption"], int(match["severity"]),
                       f"{match['wnid']}/{match['file']}")
                if key not in wanted:
                    continue
                # the output path is built from the validated name parts, never the member's
                out = released_path(target, *key)
                out.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have data
                    continue
                partial = out.with_name(out.name + ".part")
                with source, open(partial, "wb") as handle:
                    while chunk := source.read(1 << 20):
                        handle.write(chunk)
                partial.replace(out)
                found += 1
    return found


def fetch_released(config: ImageNetCReleased, image_ids: list[str], target: Path,
                   dataset: str) -> dict[str, object]:
    """Put the released images of ``image_ids`` (``<wnid>/<file>``) under
    ``target/imagenet_c/``; the info to record in the manifest.

    Raises :class:`DataError` when a tarball is missing or none of the wanted images is found
    (a wrong folder); images missing from a partial copy are counted, and the manipulation
    skips them with a logged reason.
    """
    wanted = _wanted(config, image_ids)
    families = sorted({FAMILY_OF[c] for c in config.corruptions})
    notes: list[str] = []
    if config.local_dir:
        root = local_folder(config.local_dir, dataset,
                            "an extracted ImageNet-C copy (<corruption>/<severity>/<wnid>/...)")
        found = 0
        for corruption, severity, image_id in sorted(wanted):
            source = root / corruption / str(severity) / image_id
            if source.is_file():
                link_or_copy(source, released_path(target, corruption, severity, image_id))
                found += 1
        origin = f"extracted copy {root}"
    else:
        tarballs: dict[str, Path] = {}
        for family in families:
            if config.archive_dir:
                tarball = Path(config.archive_dir).expanduser() / f"{family}.tar"
                if not tarball.is_file():
                    raise DataError(
                        f"dataset '{dataset}': the released ImageNet-C tarball {tarball} does "
                        f"not exist; put {', '.join(f + '.tar' for f in families)} from "
                        f"zenodo.org/record/2235448 into dataset.{dataset}.source.imagenet_c."
                        "archive_dir")
                tarballs[family] = tarball
            else:
                verified = obtain_file(
                    dataset, f"the released ImageNet-C {family}.tar",
                    config.url.format(family=family), sha256=None, md5=None,
                    filename=f"imagenet-c-{family}.tar", cache_dir=config.cache_dir,
                    timeout=config.timeout, retries=config.retries)
                tarballs[family] = verified.path
                notes.append(f"{family}.tar {checksum_note(verified)}")
        found = _from_tarballs(tarballs, wanted, target)
        origin = ("tarballs in " + str(config.archive_dir) if config.archive_dir
                  else config.url.format(family="<family>"))
    if found == 0:
        raise DataError(
            f"dataset '{dataset}': none of the {len(wanted)} released ImageNet-C images of the "
            f"selected validation images was found in the {origin}; is it ImageNet-C "
            "(<corruption>/<severity>/<wnid>/<file>.JPEG)?")
    return {"imagenet_c_released": {
        "source": f"ImageNet-C (Hendrycks & Dietterich 2019), {origin}",
        "corruptions": list(config.corruptions), "severities": list(config.severities),
        "images": found, "missing": len(wanted) - found, "checksums": notes}}
