"""Where every artifact lives. dvc.yaml spells the same paths; a test keeps them in step."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
METRICS = Path("metrics")
PLOTS = Path("plots")
PARTIAL = DATA / ".partial"
#: sha256 digests remembered by file stat (not tracked; see cliprobe.datasets.content)
DIGEST_CACHE = DATA / "cache" / "content"
#: the scan stage's listings of each dataset's local inputs
INPUTS = DATA / "inputs"
CLEAN = "original"
#: The embeddings (and manifest) of a dataset's official train split, for the literature probe.
TRAIN_SPLIT = "train_split"


def input_listing_path(dataset: str) -> Path:
    """The scan stage's listing (path, size, sha256) of what the fetch stage reads locally."""
    return INPUTS / f"{dataset}.json"


def raw_dir(dataset: str) -> Path:
    """Images of a dataset after the fetch stage."""
    return DATA / "raw" / dataset


def manifest_path(dataset: str) -> Path:
    """The dataset's manifest (Parquet)."""
    return DATA / "manifests" / f"{dataset}.parquet"


def captions_path(dataset: str) -> Path:
    """The dataset's companion caption table (Parquet; empty without captions)."""
    return DATA / "manifests" / f"{dataset}.captions.parquet"


def caption_embeddings_path(model: str, dataset: str) -> Path:
    """Text embeddings of a dataset's captions under a model (computed once)."""
    return DATA / "captions" / model / f"{dataset}.parquet"


def train_manifest_path(dataset: str) -> Path:
    """The manifest of the dataset's official train (+ validation) split; empty without one."""
    return DATA / "manifests" / f"{dataset}.{TRAIN_SPLIT}.parquet"


def embeddings_path(model: str, dataset: str, manipulation: str) -> Path:
    """Embeddings of one cell; ``manipulation == 'original'`` is the clean gallery."""
    return DATA / "embeddings" / model / dataset / f"{manipulation}.parquet"


def classifier_path(model: str, dataset: str) -> Path:
    """The zero-shot classifier of a model and dataset (for the selected prompt set)."""
    return DATA / "classifiers" / model / f"{dataset}.parquet"


def cell_dir(model: str, dataset: str, manipulation: str) -> Path:
    """Score outputs of one cell: metrics.json, per_image.parquet, neighbours.parquet."""
    return DATA / "cells" / model / dataset / manipulation


def saliency_dir(model: str, dataset: str, cell: str) -> Path:
    """Saliency maps of one cell (``_saliency`` can never be a manipulation's name: it is not
    a slug), inside the cells folder so the stages reading ``data/cells`` see them."""
    return DATA / "cells" / model / dataset / "_saliency" / cell


def constructed_cache(dataset: str) -> Path:
    """Images of a dataset after a manipulation's construction step, decoded once (a cache)."""
    return DATA / ".cache" / "constructed" / dataset
