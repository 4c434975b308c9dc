"""Stage captions@<model>-<dataset>: text embeddings of a caption dataset's captions, computed
once per model and dataset and shared by every manipulation's cell (the text side of image <->
text retrieval is never manipulated).

Datasets without captions get an empty file at once, without loading the model (DVC declares
the output for every dataset). Models whose image feature is not CLIP's joint embedding
(``features`` mac / rmac / multipatch) get an empty file too: their images cannot be compared
with text.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from cliprobe import paths
from cliprobe.config.stage_params import load_stage_params
from cliprobe.datasets.captions import read_captions
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path
from cliprobe.io.caption_embeddings import write_caption_embeddings
from cliprobe.provenance import package_versions
from cliprobe.stages._common import parser, setup_logging


def _write(output: Any, captions: Any, vectors: np.ndarray, metadata: dict[str, Any]) -> None:
    with atomic_path(output) as tmp:
        write_caption_embeddings(tmp, captions["caption_id"].tolist(),
                                 captions["image_id"].tolist(), vectors, metadata)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "", "model", "dataset").parse_args(argv)
    params = load_stage_params("captions", args.params, model=args.model,
                               dataset=args.dataset)
    source = paths.captions_path(args.dataset)
    if not source.is_file():
        raise DataError(f"dataset '{args.dataset}' has no caption table at {source}: run "
                        f"`dvc repro fetch@{args.dataset}`")
    captions = read_captions(source)
    output = paths.caption_embeddings_path(args.model, args.dataset)
    config = params.model[args.model]
    base = {"model": args.model, "dataset": args.dataset, "n_captions": len(captions)}
    if captions.empty or config.features != "global":  # (Arrow lists need a width >= 1)
        reason = ("the dataset has no captions" if captions.empty else
                  f"features '{config.features}' are not CLIP's joint embedding")
        _write(output, captions.iloc[0:0], np.zeros((0, 1), dtype=np.float32),
               {**base, "n_captions": 0, "skipped": reason})
        print(f"captions {args.model}/{args.dataset}: none encoded ({reason}) -> {output}",
              file=sys.stderr)
        return

    from cliprobe.metrics.zeroshot import encode_text_fn
    from cliprobe.models import load_model

    loaded = load_model(args.model, config, params.embed.device)
    vectors = encode_text_fn(loaded)(captions["caption"].tolist())
    metadata = {**loaded.provenance, **base, "n_images": int(captions["image_id"].nunique()),
                "tokenizer": "the model's open_clip tokenizer (texts longer than its context "
                             "are truncated)",
                "versions": package_versions()}
    _write(output, captions, vectors, metadata)
    print(f"captions {args.model}/{args.dataset}: {len(captions)} captions of "
          f"{metadata['n_images']} images -> {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
