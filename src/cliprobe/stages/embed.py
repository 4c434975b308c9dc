"""Stages embed@<model>-<dataset> and manipulate@<model>-<dataset>-<manipulation>.

``--manipulation original`` embeds the clean images (the gallery every cell of the dataset
uses, computed once) and the dataset's official train split (``train_split.parquet``, for the
literature linear probe; an empty table saying why when the dataset has none); any other name
applies that manipulation first.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.config.loading import manipulation_params
from cliprobe.config.stage_params import StageParams, load_stage_params
from cliprobe.datasets.manifest import class_vocabulary, has_classes, read_manifest
from cliprobe.embedding.encoder import make_image_encoder, output_dim
from cliprobe.embedding.reader import manipulation_step
from cliprobe.embedding.runner import default_workers, embed_manifest
from cliprobe.errors import ConfigError, DataError, exit_on_user_error
from cliprobe.io.atomic import remove_stale_temporaries
from cliprobe.io.embeddings import write_empty_embeddings
from cliprobe.manipulations import get as get_manipulation
from cliprobe.manipulations.corruptions import RESIZE_SHORT_SIDE
from cliprobe.models import load_model
from cliprobe.models.hardware import bf16_hint
from cliprobe.provenance import package_versions
from cliprobe.stages._common import parser, setup_logging

log = logging.getLogger("cliprobe.embed")


def cell_spec(params: StageParams, manipulation: str) -> tuple[str, dict]:
    """Registry function name and params of a cell (``original`` is the identity)."""
    if manipulation == paths.CLEAN:
        return "identity", {}
    entry = params.manipulation[manipulation]
    return entry.function, entry.params


def jpeg_draft_side(model: Any) -> int:
    """The smallest side a draft-decoded JPEG may have: the model's input size, and never
    below ImageNet-C's 256 px resize."""
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    side = max(size) if isinstance(size, (tuple, list)) else int(size)
    return max(side, RESIZE_SHORT_SIDE)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "", "model", "dataset", "manipulation").parse_args(argv)
    manipulated = args.manipulation != paths.CLEAN
    params = load_stage_params("manipulate" if manipulated else "embed", args.params,
                               model=args.model, dataset=args.dataset,
                               manipulation=args.manipulation)
    function, raw_params = cell_spec(params, args.manipulation)
    manipulation = get_manipulation(function)
    manip_params = manipulation_params(args.manipulation, function, raw_params)

    manifest_file = paths.manifest_path(args.dataset)
    if not manifest_file.is_file():
        raise DataError(
            f"dataset '{args.dataset}' has no manifest at {manifest_file}: run "
            f"`dvc repro fetch@{args.dataset}`"
        )
    manifest, manifest_info = read_manifest(manifest_file)
    class_names = class_vocabulary(manifest, manifest_info)
    loaded = load_model(args.model, params.model[args.model], params.embed.device)
    hint = bf16_hint(args.model, loaded.config.precision, loaded.device)
    if hint:
        log.info(hint)
    workers = params.embed.num_workers
    num_workers = default_workers(loaded.device) if workers == "auto" else int(workers)

    output = paths.embeddings_path(args.model, args.dataset, args.manipulation)
    remove_stale_temporaries(output.parent)
    metadata = {
        **loaded.provenance,
        "dataset": args.dataset,
        "manipulation": args.manipulation,
        "function": function,
        "params": manip_params.model_dump(),
        # the clean images use no randomness: their file does not depend on the seed
        **({"seed": params.seed} if manipulated else {}),
        "versions": package_versions(),
    }
    if not has_classes(manifest["label"]):  # a caption dataset: what typographic writes from
        metadata["words"] = class_names
    draft = jpeg_draft_side(loaded.model) if loaded.config.jpeg_draft else None
    if manipulation.warm_up is not None:
        manipulation.warm_up()  # once per process (a warm worker), not per decode worker
    # ImageNet-C's Resize + CenterCrop: decoded once per dataset, shared by every cell
    construction = (manipulation.construction_for(manip_params)
                    if params.embed.decode_once else None)
    encode = make_image_encoder(loaded.model, loaded.device, loaded.config.precision,
                                loaded.config.features, loaded.config.feature_params)
    dim = (loaded.embed_dim if loaded.config.features == "global"
           else output_dim(encode, loaded.preprocess))

    def run(rows: pd.DataFrame, out: Path, meta: dict[str, Any], name: str) -> None:
        common = dict(
            image_root=paths.raw_dir(args.dataset),
            transform=manipulation_step(manipulation, manip_params, args.manipulation,
                                        params.seed if manipulated else 0),
            preprocess=loaded.preprocess,
            embed_dim=dim,
            output=out,
            partial_root=paths.PARTIAL,
            metadata=meta,
            batch_size=params.embed.batch_size,
            chunk_size=params.embed.chunk_size,
            description=f"{args.model}/{args.dataset}/{name}",
            class_names=class_names,
        )
        if params.embed.backend == "ray":
            if draft:
                raise ConfigError(f"model.{args.model}.jpeg_draft is not supported by the ray "
                                  "backend: turn one of them off")
            # Same chunks, same file: the Ray backend only changes where the work runs.
            from cliprobe.embedding.ray_backend import embed_manifest_ray, encoder_from_model

            report = embed_manifest_ray(
                rows,
                encode=encoder_from_model(partial(load_model, args.model,
                                                  params.model[args.model],
                                                  params.embed.device)),
                address=params.embed.ray_address,
                num_actors=params.embed.ray_num_actors,
                **common,
            )
        else:
            report = embed_manifest(rows, encode=encode, num_workers=num_workers,
                                    pin_memory=loaded.device == "cuda",
                                    construction=construction,
                                    construction_cache=paths.constructed_cache(args.dataset),
                                    draft=draft, **common)
        where = ("ray" if params.embed.backend == "ray"
                 else f"local, {num_workers} decode workers")
        for entry in report.skipped:
            log.warning("skipped %s: %s", entry["image_id"], entry["reason"])
        print(
            f"embed {args.model}/{args.dataset}/{name} ({loaded.weights}): "
            f"{report.n_images} images, {report.n_skipped} skipped, {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} img/s, {where}, {loaded.device}) "
            f"-> {out}",
            file=sys.stderr,
        )

    run(manifest, output, metadata, args.manipulation)
    if args.manipulation == paths.CLEAN:
        # the official train split, for the literature linear probe (its own DVC output)
        train_out = paths.embeddings_path(args.model, args.dataset, paths.TRAIN_SPLIT)
        remove_stale_temporaries(train_out.parent)
        train_rows, train_info = read_manifest(paths.train_manifest_path(args.dataset))
        train_meta = {**metadata, "manipulation": paths.TRAIN_SPLIT,
                      "probe_train": train_info.get("probe_train")}
        if train_rows.empty:
            write_empty_embeddings(train_out, dim, train_meta)
        else:
            run(train_rows, train_out, train_meta, paths.TRAIN_SPLIT)


if __name__ == "__main__":
    main()
