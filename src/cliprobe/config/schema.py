"""The schema of ``params.yaml``: every key, its type and its range, checked before any work.

A validation failure names the offending key path (``manipulation.blurred.sigma``) so a user
can fix it without reading code.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cliprobe.prompts import PromptSet
from cliprobe.retrieval.indexes import IndexConfig
from cliprobe.retrieval.postprocess import KMeansConfig, PCAConfig
from cliprobe.scores.remote import RemoteRetrievalConfig

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class StrictModel(BaseModel):
    """A model that rejects unknown keys (typos must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(StrictModel):
    """One CLIP model: an open_clip architecture plus a pretrained tag or checkpoint file."""

    arch: str = Field(description="open_clip architecture name, e.g. ViT-B-32, or cliprobe-smoke")
    pretrained: str | None = Field(
        default=None,
        description="open_clip pretrained tag (openai, laion2b_s34b_b79k, ...), a local "
        "checkpoint file, or null for seeded random weights",
    )
    random_init_seed: int | None = Field(
        default=None, description="required when pretrained is null: seed of the random weights"
    )
    precision: Literal["fp32", "fp16", "bf16", "amp", "amp_bf16"] = "fp32"
    force_quick_gelu: bool | None = Field(
        default=None, description="null = follow the pretrained tag's activation (SPEC §7)"
    )
    features: Literal["global", "mac", "rmac", "multipatch"] = Field(
        default="global",
        description="image feature: the CLIP embedding (global), integral max-pooling (mac) or "
        "regional max-pooling (rmac) of the visual tower's final feature map, or seed 002's "
        "5-patch mean (multipatch); zero-shot scores need the global embedding",
    )
    rmac_scales: int = Field(default=3, ge=1, le=6)
    multipatch_overlap: float = Field(default=0.4, ge=0.0, lt=1.0)

    @property
    def feature_params(self) -> dict[str, Any]:
        """Keyword arguments of the feature extractor."""
        return {"rmac": {"scales": self.rmac_scales},
                "multipatch": {"overlap": self.multipatch_overlap}}.get(self.features, {})

    @model_validator(mode="after")
    def _random_weights_need_a_seed(self) -> ModelConfig:
        if self.pretrained is None and self.random_init_seed is None:
            raise ValueError(
                "pretrained is null (random weights) but random_init_seed is not set; "
                "set random_init_seed so the weights are reproducible"
            )
        return self

    @property
    def is_random(self) -> bool:
        """True when the model has random weights (never a trained CLIP)."""
        return self.pretrained is None

    @property
    def pretrained_is_file(self) -> bool:
        """True when ``pretrained`` names a local checkpoint file rather than a tag."""
        return self.pretrained is not None and (
            os.sep in self.pretrained or self.pretrained.endswith((".pt", ".bin", ".safetensors"))
        )


class SampleSource(StrictModel):
    """The built-in sample: photos shipped inside scikit-image and scikit-learn wheels."""

    kind: Literal["sample"]


class ImageFolderSource(StrictModel):
    """A folder of class sub-folders, or a flat folder plus a ``path,label`` CSV."""

    kind: Literal["image_folder"]
    path: str
    labels_csv: str | None = None


#: Where the Distill photos are downloaded from (the article's repository, CC-BY 4.0).
TYPOGRAPHIC_IN_THE_WILD_URL = (
    "https://raw.githubusercontent.com/distillpub/post--multimodal/master/"
    "public/typographic/in-the-wild-2/"
)


class TypographicInTheWildSource(StrictModel):
    """The Distill "in the wild" typographic photos (Goh et al. 2021): ``<object>-<word>.jpg``.

    Downloaded from ``url_base`` into ``cache_dir`` and checked against the sha256 manifest
    shipped with cliprobe, or taken from ``local_dir`` (any folder of ``<object>-<word>``
    photos; files of the Distill set in it are checked against the manifest too).
    """

    kind: Literal["typographic_in_the_wild"]
    local_dir: str | None = Field(
        default=None, description="a local folder of <object>-<word>.jpg photos; null = download"
    )
    url_base: str = TYPOGRAPHIC_IN_THE_WILD_URL
    cache_dir: str | None = Field(
        default=None,
        description="download cache; null = <user cache dir>/cliprobe/typographic_in_the_wild",
    )
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    retries: int = Field(default=3, ge=1, description="attempts per file, with backoff")


DatasetSource = Annotated[
    SampleSource | ImageFolderSource | TypographicInTheWildSource, Field(discriminator="kind")
]


class SubsampleConfig(StrictModel):
    """Seed 001's subsampling: N classes and/or M images per class, chosen with a seed."""

    classes: int | None = Field(default=None, gt=0)
    per_class: int | None = Field(default=None, gt=0)
    seed: int = 0


class DatasetConfig(StrictModel):
    """One dataset: where its images come from and how it is subsampled."""

    source: DatasetSource
    subsample: SubsampleConfig = SubsampleConfig()
    descriptions_csv: str | None = Field(
        default=None, description="CSV label,description: the class texts of the "
        "'descriptions' prompt set",
    )


class ManipulationConfig(BaseModel):
    """One manipulation cell: a registry function name plus that function's parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    function: str

    @property
    def params(self) -> dict[str, Any]:
        """The function's parameters (everything but ``function``)."""
        return dict(self.model_extra or {})


class EmbedConfig(StrictModel):
    """Execution settings of the embedding stages (speed, not results)."""

    batch_size: int = Field(default=32, gt=0)
    num_workers: int | Literal["auto"] = "auto"
    chunk_size: int = Field(default=512, gt=0)
    device: str = "auto"
    backend: Literal["local", "ray"] = Field(
        default="local", description="local: DataLoader workers on this machine; ray: Ray Data "
        "tasks and a model actor pool (pip install 'cliprobe[ray]')")
    ray_address: str | None = Field(
        default=None, description="an existing Ray cluster (null: $RAY_ADDRESS, else a local "
        "instance with this machine's CPUs)")
    ray_num_actors: int | None = Field(default=None, gt=0,
                                       description="model actors; null = one per GPU, else "
                                       "half the CPUs")

    @field_validator("num_workers")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be >= 0 or 'auto'")
        return value


class RetrievalConfig(StrictModel):
    """Retrieval settings of the score stages."""

    index: IndexConfig = IndexConfig()
    pca: PCAConfig = PCAConfig()
    kmeans: KMeansConfig = KMeansConfig()
    ranking_depth: int = Field(
        default=1000, gt=0, description="ranking length for mAP (the whole gallery if smaller)")
    remote: RemoteRetrievalConfig = RemoteRetrievalConfig()
    neighbours: int = Field(default=10, gt=0)
    threshold: float = Field(default=0.8, gt=0, le=2.0)
    recall_k: list[int] = Field(default_factory=lambda: [1, 5, 10], min_length=1)

    @field_validator("recall_k")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if any(k <= 0 for k in value):
            raise ValueError("every k must be > 0")
        return sorted(set(value))


class StatsConfig(StrictModel):
    """Bootstrap confidence intervals."""

    bootstrap_resamples: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)


class ZeroshotConfig(StrictModel):
    """Zero-shot classification and the linear probe."""

    extend_with_words: bool = Field(
        default=True,
        description="add a typographic dataset's written words that are not classes to the "
        "classifier's classes (seed 000: egg vs cat)",
    )
    extra_classes: list[str] = Field(
        default_factory=list,
        description="more classes for every classifier, e.g. a post-it's word",
    )
    probe_test_fraction: float = Field(default=0.25, gt=0, lt=1)


class Params(StrictModel):
    """The whole of ``params.yaml``."""

    seed: int = 0
    model: dict[str, ModelConfig]
    dataset: dict[str, DatasetConfig]
    manipulation: dict[str, ManipulationConfig] = Field(default_factory=dict)
    embed: EmbedConfig = EmbedConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    stats: StatsConfig = StatsConfig()
    prompts: PromptSet = PromptSet(name="photo_of", templates=["a photo of a {}."])
    zeroshot: ZeroshotConfig = ZeroshotConfig()

    @field_validator("model", "dataset", "manipulation")
    @classmethod
    def _slug_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not SLUG.match(key):
                raise ValueError(
                    f"name {key!r} is not a slug (letters, digits, '-', '_'; no dots): "
                    "DVC stage names and param paths are built from it"
                )
        return value

    @field_validator("model", "dataset")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("select at least one")
        return value

    @field_validator("manipulation")
    @classmethod
    def _original_is_implicit(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "original" in value:
            raise ValueError(
                "'original' is the clean baseline, computed by the embed stage for every model "
                "and dataset; do not select it as a manipulation"
            )
        return value
