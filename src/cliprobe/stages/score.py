"""Stages score@<model>-<dataset>-<manipulation> and score_original@<model>-<dataset>.

One cell: retrieve each (manipulated) query among the dataset's clean gallery, classify it
zero-shot with the dataset's text classifier, and evaluate the linear probe (fitted here on the
clean gallery for the original cell). On a caption dataset, also image <-> text retrieval: the
cell's images against the dataset's clean captions. Where a manipulation wrote a word, the
word search: does "a photo of a {word}" now score the image above its clean self? Every metric
gets a bootstrap interval. Writes into the cell folder: metrics.json, per_image.parquet,
neighbours.parquet, probabilities.parquet and (original cell) probe.npz and probe_official.npz
(the literature probe, fitted on the dataset's official train split).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cliprobe import paths
from cliprobe.config.stage_params import StageParams, effective_retrieval, load_stage_params
from cliprobe.datasets.manifest import has_classes, read_manifest
from cliprobe.errors import DataError, exit_on_user_error
from cliprobe.io.atomic import atomic_path, write_json
from cliprobe.io.caption_embeddings import read_caption_embeddings
from cliprobe.io.classifier import read_classifier
from cliprobe.io.embeddings import NOT_APPLICABLE, read_embeddings, vectors_to_column
from cliprobe.metrics import retrieval as rm
from cliprobe.provenance import package_versions
from cliprobe.scores import probe
from cliprobe.scores.captions import caption_scores
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.retrieval import align, retrieval_scores, revisited_scores
from cliprobe.scores.zeroshot import word_search_scores, zeroshot_scores
from cliprobe.stages._common import parser

#: What the cell records about its classifier: which prompts and class names, which classes,
#: and the logit scale / bias its probabilities use.
ZEROSHOT_RECORD = ("prompts", "prompt_kind", "dataset_prompts", "templates_from", "n_templates",
                   "class_names", "class_names_from", "renamed_classes", "classes",
                   "n_dataset_classes", "n_present_classes", "logit_scale", "logit_bias")
PROVENANCE_KEYS = ("model", "arch", "pretrained", "weights", "random_weights", "precision",
                   "quick_gelu", "features")


def write_probabilities(path: Path, image_ids: list[str], probabilities: np.ndarray,
                        class_names: list[str]) -> None:
    """Per-image class probabilities, ``(N, C)`` float32, class names in the file metadata."""
    table = pa.Table.from_arrays(
        [pa.array(image_ids, type=pa.string()), vectors_to_column(probabilities)],
        names=["image_id", "probabilities"],
    ).replace_schema_metadata({b"cliprobe": json.dumps({"class_names": class_names})})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def remote_cell(params: StageParams, model: str, queries: Any, rows: np.ndarray,
                clean_vectors: np.ndarray, estimate: Estimator) -> tuple[dict, dict]:
    """Seed 001's score against the remote kNN service (loads the model to embed results)."""
    from cliprobe.embedding.encoder import make_image_encoder
    from cliprobe.models import load_model
    from cliprobe.scores.remote import embed_files_with, remote_scores

    loaded = load_model(model, params.model[model], params.embed.device)
    encode = make_image_encoder(loaded.model, loaded.device, loaded.config.precision,
                                loaded.config.features, loaded.config.feature_params)
    return remote_scores(queries.vectors[rows], clean_vectors, queries.labels[rows],
                         params.retrieval.remote, params.retrieval.threshold,
                         embed_files_with(loaded.model, loaded.preprocess, encode), estimate)


def caption_cell(model: str, dataset: str, queries: Any, rows: np.ndarray,
                 recall_k: list[int], estimate: Estimator) -> tuple[dict, pd.DataFrame, dict]:
    """Image <-> text scores against the captions stage's embeddings (nothing without
    captions): metrics, per-image columns, facts (with the words a typographic cell wrote
    from, recorded by the embed stage)."""
    caption_file = paths.caption_embeddings_path(model, dataset)
    if not caption_file.is_file():
        raise DataError(f"cell {estimate.cell_key} has no caption embeddings at {caption_file}: "
                        f"run `dvc repro captions@{model}-{dataset}`")
    captions = read_caption_embeddings(caption_file)
    if not len(captions):
        return {}, pd.DataFrame(index=range(len(rows))), {}
    metrics, columns, facts = caption_scores(queries, rows, captions, recall_k, estimate)
    if "words" in queries.metadata:
        facts["typographic_vocabulary"] = queries.metadata["words"]
    return metrics, columns, facts


def skip_counts(gallery_metadata: dict[str, Any], query_metadata: dict[str, Any],
                n_scored: int) -> dict[str, Any]:
    """Images of the dataset the cell does not score, by why.

    ``n_skipped`` / ``skipped``: unreadable or invalid images (in the gallery or the query
    file); ``n_not_applicable`` / ``not_applicable``: images the manipulation declined
    (``ManipulationNotApplicable``). ``n_scored + n_skipped + n_not_applicable`` is the
    dataset's image count.
    """
    total = gallery_metadata["n_images"] + gallery_metadata["n_skipped"]
    query_skips = query_metadata.get("skipped", [])
    declined = sorted({s["image_id"] for s in query_skips if s.get("kind") == NOT_APPLICABLE})
    unreadable = {*(s["image_id"] for s in gallery_metadata["skipped"]),
                  *(s["image_id"] for s in query_skips)} - set(declined)
    return {"n_skipped": int(total - n_scored - len(declined)), "skipped": sorted(unreadable),
            "n_not_applicable": len(declined), "not_applicable": declined}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "", "model", "dataset", "manipulation").parse_args(argv)
    is_original = args.manipulation == paths.CLEAN
    params = load_stage_params("score_original" if is_original else "score", args.params,
                               model=args.model, dataset=args.dataset,
                               manipulation=args.manipulation)
    gallery = read_embeddings(paths.embeddings_path(args.model, args.dataset, paths.CLEAN))
    queries = (gallery if is_original
               else read_embeddings(paths.embeddings_path(args.model, args.dataset,
                                                          args.manipulation)))
    manifest, _ = read_manifest(paths.manifest_path(args.dataset))
    classifier = read_classifier(paths.classifier_path(args.model, args.dataset))
    cell_key = f"{args.model}/{args.dataset}/{args.manipulation}"
    estimate = Estimator(params.seed, cell_key, params.stats.bootstrap_resamples,
                         params.stats.confidence)
    out = paths.cell_dir(args.model, args.dataset, args.manipulation)

    meta = queries.metadata
    rows, own = align(gallery, queries)
    metrics, per_image, neighbour_table, retrieval_facts = retrieval_scores(
        gallery, queries, rows, own, params.retrieval, estimate)
    revisited_metrics, revisited_facts = revisited_scores(gallery, queries, manifest, estimate)
    metrics.update(revisited_metrics)
    retrieval_facts.update(revisited_facts)
    if params.retrieval.remote.enabled:
        remote_metrics, retrieval_facts["remote"] = remote_cell(
            params, args.model, queries, rows, gallery.vectors[own], estimate)
        metrics.update(remote_metrics)
    features = queries.metadata.get("features", "global")
    zeroshot_info: dict[str, Any] = {
        **{key: classifier.metadata.get(key) for key in ZEROSHOT_RECORD},
        "n_classes": len(classifier.class_names),
        "probabilities": "softmax of logit_scale * cos (+ logit_bias), the model's own",
        "word_probability": "two-way: the written word against the true class (seed 000); "
                            "word_probability_all_classes: its share over all classes"}
    if classifier.metadata.get("vocabulary"):
        zeroshot_info["classes"] = "the dataset's vocabulary (its images have no class)"
    captions_info: dict[str, Any] = {}
    if features == "global":
        zs_metrics, zs_columns, probabilities, by_condition = zeroshot_scores(
            queries, rows, classifier, manifest, estimate)
        metrics.update(zs_metrics)
        per_image = per_image.join(zs_columns)
        search_metrics, search_columns = word_search_scores(
            queries, rows, gallery.vectors[own], classifier, estimate)
        if search_metrics:
            metrics.update(search_metrics)
            per_image = per_image.join(search_columns)
            zeroshot_info["word_search"] = {
                "query": classifier.metadata.get("word_query"),
                "metric": "fraction of images with a written word whose word query scores "
                          "the manipulated image above its clean self"}
        caption_metrics, caption_columns, captions_info = caption_cell(
            args.model, args.dataset, queries, rows, params.retrieval.recall_k, estimate)
        metrics.update(caption_metrics)
        per_image = per_image.join(caption_columns)
    else:  # pooled feature maps do not live in the text embedding space
        probabilities, by_condition = None, {}
        zeroshot_info["skipped"] = f"features '{features}' are not CLIP's joint embedding"

    probe_file = out / probe.PROBE_FILE
    if not has_classes(gallery.labels):
        probe_info: dict[str, Any] = {"skipped": "the dataset's images have no class"}
    elif is_original:
        probe_info = probe.fit_and_save(
            gallery, params.seed, params.zeroshot.probe_test_fraction, probe_file, estimate)
        if "test" in probe_info:
            metrics["probe_accuracy"] = probe_info["test"]
    else:
        evaluated = probe.evaluate_saved(
            paths.cell_dir(args.model, args.dataset, paths.CLEAN) / probe.PROBE_FILE,
            queries, estimate)
        probe_info = {"evaluated_on": "held-out images of the original cell's split"}
        if evaluated is not None:
            metrics["probe_accuracy"] = evaluated
    official_file = out / probe.OFFICIAL_PROBE_FILE
    if is_original:
        train_manifest, _ = read_manifest(paths.train_manifest_path(args.dataset))
        official_info: dict[str, Any] = probe.fit_official_and_save(
            read_embeddings(paths.embeddings_path(args.model, args.dataset, paths.TRAIN_SPLIT)),
            dict(zip(train_manifest["image_id"].astype(str),
                     train_manifest["split"].astype(str), strict=True)),
            gallery, params.probe_train, official_file, estimate)
        if "test" in official_info:
            metrics["probe_official_accuracy"] = official_info["test"]
    else:
        stored = paths.cell_dir(args.model, args.dataset, paths.CLEAN) / probe.OFFICIAL_PROBE_FILE
        official = probe.evaluate_official(stored, queries, estimate)
        official_info = {"evaluated_on": "every image of the evaluated split (the probe was "
                                         "trained on the official train split)"}
        if official is not None:
            metrics["probe_official_accuracy"] = official
        elif (reason := probe.skipped_reason(stored)) is not None:
            official_info = {"skipped": reason}

    if is_original and not probe_file.is_file():  # the manipulated cells depend on it
        probe.save_skipped(probe_file, probe_info["skipped"])
    report = {
        "cell": {"model": args.model, "dataset": args.dataset, "manipulation": args.manipulation,
                 "function": meta.get("function"), "params": meta.get("params")},
        "provenance": {**{key: meta.get(key) for key in PROVENANCE_KEYS},
                       "jpeg_draft": bool(meta.get("jpeg_draft", False)),
                       "seed": params.seed, "versions": package_versions()},
        "n_images": len(per_image),
        **skip_counts(gallery.metadata, meta, len(per_image)),
        "retrieval": {"gallery": "clean gallery of the dataset", "gallery_size": len(gallery),
                      **retrieval_facts, "settings": effective_retrieval(params.retrieval)},
        "zeroshot": zeroshot_info,
        **({"captions": captions_info} if captions_info else {}),
        "probe": probe_info,
        "probe_official": official_info,
        "metrics": metrics,
        "by_condition": by_condition,
        "per_class_seed001_accuracy": rm.class_means(
            per_image["seed001_accuracy"].to_numpy(), per_image["label"].to_numpy()
        ).to_dict() if has_classes(per_image["label"]) else {},
    }
    with atomic_path(out / "per_image.parquet") as tmp:
        per_image.to_parquet(tmp, index=False)
    with atomic_path(out / "neighbours.parquet") as tmp:
        neighbour_table.to_parquet(tmp, index=False)
    if probabilities is not None:
        write_probabilities(out / "probabilities.parquet", per_image["image_id"].tolist(),
                            probabilities, classifier.class_names)
    write_json(out / "metrics.json", report)
    shown = ", ".join(
        f"{name} {metrics[name]['value']:.4f} [{metrics[name]['ci_low']:.4f}, "
        f"{metrics[name]['ci_high']:.4f}]"
        for name in ("seed001_accuracy", "zeroshot_acc1", "attack_success_rate",
                     "text_to_image_recall_at_1", "image_to_text_recall_at_1")
        if name in metrics and metrics[name]["value"] is not None
    )
    print(f"score {cell_key}: {shown}; {len(per_image)} images -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
