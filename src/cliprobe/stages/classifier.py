"""Stage classifier@<model>-<dataset>: the zero-shot text classifier, computed once per model,
dataset and prompt set, and shared by every cell of that dataset.

Classes: the dataset's classes (a caption dataset's vocabulary, its images having no class),
then (when ``zeroshot.extend_with_words``) the written words of a typographic dataset that are
not classes, then ``zeroshot.extra_classes`` (seed 000's "egg" vs "cat": the word on the image
must be a class the classifier can predict).

Beside each class's prompt-set embedding the file stores the embedding of its word query
(``zeroshot.word_query``, "a photo of a {}"): the caption a search for that word would use,
which the typographic cells score (does the attacked image now rank above its clean self?).
"""

from __future__ import annotations

import sys

import numpy as np

from cliprobe import paths
from cliprobe.config.schema import Params
from cliprobe.datasets.manifest import class_vocabulary, has_classes, read_manifest
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path
from cliprobe.io.classifier import write_classifier
from cliprobe.metrics.zeroshot import build_classifier, encode_text_fn
from cliprobe.models import load_model
from cliprobe.prompts import class_prompts
from cliprobe.provenance import package_versions
from cliprobe.stages._common import load_cell_params, parser, setup_logging


def classifier_classes(dataset_classes: list[str], words: list[str], params: Params) -> list[str]:
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
    params = load_cell_params(args.params, model=args.model, dataset=args.dataset)
    manifest_file = paths.manifest_path(args.dataset)
    if not manifest_file.is_file():
        raise DataError(f"dataset '{args.dataset}' has no manifest at {manifest_file}: run "
                        f"`dvc repro fetch@{args.dataset}`")
    manifest, manifest_info = read_manifest(manifest_file)
    words = [str(w) for w in manifest["word_label"].dropna()] if "word_label" in manifest else []
    dataset_classes = class_vocabulary(manifest, manifest_info)
    if not dataset_classes:
        raise DataError(f"dataset '{args.dataset}' has neither classes nor a vocabulary "
                        f"(source.words): nothing to classify; rerun `dvc repro "
                        f"fetch@{args.dataset}`")
    classes = classifier_classes(dataset_classes, words, params)
    dataset_config = params.dataset[args.dataset]
    prompts = class_prompts(params.prompts, classes, dataset_config.descriptions_csv)
    loaded = load_model(args.model, params.model[args.model], params.embed.device)
    encode = encode_text_fn(loaded)
    weights = build_classifier(classes, prompts, encode)
    query = params.zeroshot.word_query
    word_queries = encode([query.format(name) for name in classes])
    output = paths.classifier_path(args.model, args.dataset)
    metadata = {**loaded.provenance, "dataset": args.dataset, "prompts": params.prompts.name,
                "n_prompts": int(sum(len(t) for t in prompts.values())),
                "n_dataset_classes": len(dataset_classes), "word_query": query,
                "vocabulary": not has_classes(manifest["label"]),
                "versions": package_versions()}
    with atomic_path(output) as tmp:
        write_classifier(tmp, classes, np.asarray(weights).T, metadata, word_queries)
    print(f"classifier {args.model}/{args.dataset} ({params.prompts.name}): {len(classes)} "
          f"classes, {metadata['n_prompts']} prompts -> {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
