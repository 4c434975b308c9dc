"""Stage classifier@<model>-<dataset>: the zero-shot text classifier, computed once per model,
dataset and prompt set, and shared by every cell of that dataset.

Classes: the dataset's classes (all of them by default, even when subsampling left some without
an image: ``zeroshot.classes``; a caption dataset's vocabulary, its images having no class),
then (when ``zeroshot.extend_with_words``) the written words of a typographic dataset that are
not classes, then ``zeroshot.extra_classes`` (seed 000's "egg" vs "cat": the word on the image
must be a class the classifier can predict).

Prompts: :func:`cliprobe.prompts.resolve_class_prompts` (each dataset's own templates and
published class names by default). The file's metadata records the prompt choices, the class
set and the model's own logit scale and bias, which the score stages use for probabilities.

Beside each class's prompt-set embedding the file stores the embedding of its word query
(``zeroshot.word_query``, "a photo of a {}"): the caption a search for that word would use,
which the typographic cells score (does the attacked image now rank above its clean self?).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from cliprobe import paths
from cliprobe.config.schema import Params
from cliprobe.config.stage_params import StageParams, load_stage_params
from cliprobe.datasets.manifest import class_vocabulary, has_classes, read_manifest
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path
from cliprobe.io.classifier import write_classifier
from cliprobe.metrics.zeroshot import build_classifier, encode_text_fn, model_logit_parameters
from cliprobe.models import load_model
from cliprobe.prompts import resolve_class_prompts
from cliprobe.provenance import package_versions
from cliprobe.stages._common import parser, setup_logging


def dataset_classes(present: list[str], info: dict[str, Any], which: str) -> list[str]:
    """The dataset's classes in the classifier: all of its label set (``which`` = ``all``, as
    the manifest's info lists it) or only those with an image (``present``), sorted."""
    if which == "all":
        return sorted({*map(str, info.get("all_classes") or []), *present} - {""})
    return sorted(present)


def classifier_classes(dataset_classes: list[str], words: list[str],
                       params: Params | StageParams) -> list[str]:
    """Dataset classes (as given: sorted labels, or a caption dataset's vocabulary), then new
    written words (sorted), then extra classes."""
    classes = list(dict.fromkeys(dataset_classes))
    seen = set(classes)
    extra = sorted({w for w in words if w} - seen) if params.zeroshot.extend_with_words else []
    for name in [*extra, *params.zeroshot.extra_classes]:
        if name not in seen:
            classes.append(name)
            seen.add(name)
    return classes


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "", "model", "dataset").parse_args(argv)
    params = load_stage_params("classifier", args.params, model=args.model,
                               dataset=args.dataset)
    manifest_file = paths.manifest_path(args.dataset)
    if not manifest_file.is_file():
        raise DataError(f"dataset '{args.dataset}' has no manifest at {manifest_file}: run "
                        f"`dvc repro fetch@{args.dataset}`")
    manifest, info = read_manifest(manifest_file)
    words = [str(w) for w in manifest["word_label"].dropna()] if "word_label" in manifest else []
    present = class_vocabulary(manifest, info)
    if not present:
        raise DataError(f"dataset '{args.dataset}' has neither classes nor a vocabulary "
                        f"(source.words): nothing to classify; rerun `dvc repro "
                        f"fetch@{args.dataset}`")
    vocabulary = not has_classes(manifest["label"])
    dataset_labels = (present if vocabulary
                      else dataset_classes(present, info, params.zeroshot.classes))
    classes = classifier_classes(dataset_labels, words, params)
    prompts = resolve_class_prompts(
        params.prompts, classes, dataset_labels,
        [str(x) for x in info.get("class_order") or dataset_labels],
        dataset_prompts=params.dataset_prompts, class_names=params.zeroshot.class_names,
        descriptions_csv=params.descriptions_csv)
    loaded = load_model(args.model, params.model[args.model], params.embed.device)
    encode = encode_text_fn(loaded)
    weights = build_classifier(classes, prompts.texts, encode)
    query = params.zeroshot.word_query
    word_queries = encode([query.format(name) for name in classes])
    output = paths.classifier_path(args.model, args.dataset)
    metadata = {**loaded.provenance, "dataset": args.dataset, **prompts.record,
                "n_prompts": int(sum(len(t) for t in prompts.texts.values())),
                "classes": params.zeroshot.classes,
                "n_dataset_classes": len(dataset_labels), "n_present_classes": len(present),
                "word_query": query, "vocabulary": vocabulary,
                **model_logit_parameters(loaded), "versions": package_versions()}
    with atomic_path(output) as tmp:
        write_classifier(tmp, classes, np.asarray(weights).T, metadata, word_queries,
                         [prompts.names[c] for c in classes])
    print(f"classifier {args.model}/{args.dataset} ({params.prompts.name}, "
          f"{prompts.record['dataset_prompts']}): {len(classes)} classes, "
          f"{metadata['n_prompts']} prompts, logit scale {metadata['logit_scale']:.4g} -> "
          f"{output}", file=sys.stderr)


if __name__ == "__main__":
    main()
