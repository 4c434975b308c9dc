"""The schema of ``params.yaml``: every key, its type and its range, checked before any work.

A validation failure names the offending key path (``manipulation.blurred.sigma``) so a user
can fix it without reading code.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cliprobe.prompts import PromptSet
from cliprobe.retrieval.indexes import IndexConfig
from cliprobe.retrieval.postprocess import KMeansConfig, PCAConfig
from cliprobe.scores.remote import RemoteRetrievalConfig

#: Image features the embed stages can compute (see :mod:`cliprobe.models.features`).
FeatureVariant = Literal["global", "mac", "rmac", "multipatch"]

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class StrictModel(BaseModel):
    """A model that rejects unknown keys (typos must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureConfig(StrictModel):
    """Which image feature the embed stages compute, as :mod:`cliprobe.models.features` takes it.

    Lives here, with the variant type, so the schema never imports the model code.
    """

    variant: FeatureVariant = Field(default="global", description="global | mac | rmac | "
                                    "multipatch")
    rmac_scales: int = Field(default=3, ge=1, description="rmac: scales l = 1..L")
    multipatch_overlap: float = Field(default=0.4, ge=0.0, lt=1.0, description="multipatch: "
                                      "overlap of neighbouring corner patches, fraction of the "
                                      "patch side")

    def params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cliprobe.models.features.extract_features`."""
        if self.variant == "rmac":
            return {"scales": self.rmac_scales}
        if self.variant == "multipatch":
            return {"overlap": self.multipatch_overlap}
        return {}


class ModelConfig(StrictModel):
    """One CLIP model: an open_clip architecture plus a pretrained tag or checkpoint file."""

    arch: str = Field(description="open_clip model name: an architecture (ViT-B-32, "
                      "cliprobe-smoke), or a model with its own config and weights, "
                      "hf-hub:org/repo or local-dir:/path/to/folder")
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
    features: FeatureVariant = Field(
        default="global",
        description="image feature: the CLIP embedding (global), integral max-pooling (mac) or "
        "regional max-pooling (rmac) of the visual tower's final feature map, or seed 002's "
        "5-patch mean (multipatch); zero-shot scores need the global embedding",
    )
    rmac_scales: int = Field(default=3, ge=1, le=6)
    multipatch_overlap: float = Field(default=0.4, ge=0.0, lt=1.0)
    jpeg_draft: bool = Field(
        default=False, description="decode large JPEGs at 1/2, 1/4 or 1/8 scale (never below "
        "the model's input nor ImageNet-C's 256 px): much faster on big photos, slightly "
        "different pixels (measured by benchmarks/jpeg_draft.py); off = exact decoding")

    @property
    def feature_params(self) -> dict[str, Any]:
        """Keyword arguments of the feature extractor (one mapping: FeatureConfig's)."""
        return FeatureConfig(variant=self.features, rmac_scales=self.rmac_scales,
                             multipatch_overlap=self.multipatch_overlap).params()

    @model_validator(mode="after")
    def _random_weights_need_a_seed(self) -> ModelConfig:
        if self.names_its_weights:
            if self.pretrained is not None:
                raise ValueError(
                    f"{self.arch.split(':')[0]}: models bring their own weights; set "
                    "pretrained to null (open_clip would ignore it)")
            return self
        if self.pretrained is None and self.random_init_seed is None:
            raise ValueError(
                "pretrained is null (random weights) but random_init_seed is not set; "
                "set random_init_seed so the weights are reproducible"
            )
        return self

    @property
    def names_its_weights(self) -> bool:
        """True for open_clip's schema names (``hf-hub:org/repo``, ``local-dir:/path``): the
        config and the weights come from that repository or folder."""
        return self.arch.startswith(("hf-hub:", "local-dir:"))

    @property
    def is_random(self) -> bool:
        """True when the model has random weights (never a trained CLIP)."""
        return self.pretrained is None and not self.names_its_weights

    @property
    def pretrained_is_file(self) -> bool:
        """True when ``pretrained`` names a local checkpoint file rather than a tag."""
        return self.pretrained is not None and (
            os.sep in self.pretrained or self.pretrained.endswith((".pt", ".bin", ".safetensors"))
        )


class SampleSource(StrictModel):
    """The built-in sample: photos shipped inside scikit-image and scikit-learn wheels."""

    kind: Literal["sample"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ()


class ImageFolderSource(StrictModel):
    """A folder of class sub-folders, or a flat folder plus a ``path,label`` CSV."""

    kind: Literal["image_folder"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("path", "labels_csv")
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
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("local_dir",)
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


SHA256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
MD5 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$")]


class DownloadOptions(StrictModel):
    """Cache and network settings shared by the downloading sources."""

    cache_dir: str | None = Field(
        default=None, description="download cache; null = $CLIPROBE_DATA_CACHE, else "
        "<user cache dir>/cliprobe",
    )
    timeout: float = Field(default=60.0, gt=0, description="seconds per HTTP request")
    retries: int = Field(default=3, ge=1, description="attempts per file, with backoff")


class RemoteFile(StrictModel):
    """One file to download: URL (or ``gdrive:<id>``), pinned checksums, cache file name."""

    url: str = Field(min_length=1)
    sha256: SHA256 | None = Field(default=None, description="null = recorded at the first "
                                  "download and checked afterwards (not pinned)")
    md5: MD5 | None = Field(default=None, description="for upstreams that only publish md5")
    filename: str | None = Field(default=None, description="name in the cache; null = from "
                                 "the URL")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or "\\" in value
                                  or value in {".", ".."}):
            raise ValueError("must be a plain file name")
        return value


def _check_label_regex(value: str | None) -> str | None:
    """``value`` if it compiles and has a ``label`` group (None passes)."""
    if value is None:
        return value
    try:
        compiled = re.compile(value)
    except re.error as error:
        raise ValueError(f"not a regular expression: {error}") from None
    if "label" not in compiled.groupindex:
        raise ValueError("needs a named group (?P<label>...)")
    return value


class KaggleSource(DownloadOptions):
    """A Kaggle dataset of class sub-folders, through the official Kaggle API (or a local copy)."""

    kind: Literal["kaggle"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("local_dir",)
    dataset: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                         description="owner/slug on kaggle.com")
    version: int | None = Field(default=None, ge=1, description="dataset version; null = the "
                                "latest (pin one for reproducibility)")
    sha256: SHA256 | None = Field(default=None, description="pin of the downloaded zip")
    local_dir: str | None = Field(default=None, description="an unzipped copy (Kaggle layout)")
    subdir: str | None = Field(default=None, description="folder holding the class folders; "
                               "null = found automatically")
    split: str = "all"


class ArchiveSource(DownloadOptions):
    """A tar/zip archive (URL + checksums, or a local archive / folder) in one of three layouts.

    ``class_folders``: ``<subdir>/<label>/<image>``; ``flat``: ``<subdir>/<image>`` with the label
    taken from the file name by ``label_regex``; ``labels_file``: a CSV ``path,label`` or a
    whitespace ``<path> <label>`` file, labels optionally mapped through ``class_names_file``.
    """

    kind: Literal["archive"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("archive_path", "local_dir")
    url: str | None = Field(default=None, description="http(s) URL or gdrive:<file id>")
    sha256: SHA256 | None = None
    md5: MD5 | None = None
    filename: str | None = Field(default=None, description="archive name in the cache")
    archive_path: str | None = Field(default=None, description="a local copy of the archive "
                                     "(checked against the pins, extracted into the cache)")
    local_dir: str | None = Field(default=None, description="an extracted copy: no download")
    extra_files: list[RemoteFile] = Field(default_factory=list, description="files beside the "
                                          "archive (labels, class names)")
    layout: Literal["class_folders", "flat", "labels_file"] = "class_folders"
    subdir: str | None = Field(default=None, description="folder (in the extracted archive) "
                               "holding the images; null = found automatically")
    label_regex: str | None = Field(default=None, description="flat layout: regex with a "
                                    "(?P<label>...) group, matched against the file stem")
    labels_file: str | None = Field(default=None, description="labels_file layout: a path in "
                                    "the archive or the file name of an extra file")
    labels_format: Literal["csv", "whitespace"] = "csv"
    class_names_file: str | None = Field(default=None, description="maps integer labels to "
                                         "names ('<name> <index>' lines)")
    split: str = "all"

    @field_validator("label_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _check_label_regex(value)

    @model_validator(mode="after")
    def _complete(self) -> ArchiveSource:
        if not (self.url or self.archive_path or self.local_dir):
            raise ValueError("set url, archive_path or local_dir")
        if self.layout == "labels_file" and not self.labels_file:
            raise ValueError("layout labels_file needs labels_file")
        return self


class OxfordParisSource(DownloadOptions):
    """Revisited Oxford / Paris: image archives plus the revisitop ground truth (.mat or .pkl).

    A pickled ground truth is only unpickled after its sha256 matched ``gnd.sha256`` (required),
    and then with an unpickler restricted to plain containers and numpy arrays.
    """

    kind: Literal["oxford_paris"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("local_dir",)
    images: list[RemoteFile] = Field(min_length=1)
    gnd: RemoteFile
    local_dir: str | None = Field(default=None, description="a folder holding the images (any "
                                  "depth) and the gnd_*.mat / gnd_*.pkl file")
    label_regex: str = Field(default=r"^(?:paris_)?(?P<label>.+?)_\d+$", description="the "
                             "landmark from an image name (all_souls_000013 -> all_souls)")

    @field_validator("label_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _check_label_regex(value)

    @model_validator(mode="after")
    def _pickles_are_pinned(self) -> OxfordParisSource:
        name = self.gnd.filename or self.gnd.url
        if name.endswith(".pkl") and not self.gnd.sha256:
            raise ValueError("gnd: a pickled ground truth (.pkl) is only loaded with a pinned "
                             "gnd.sha256; pin it or use the .mat ground truth")
        return self


#: torchvision datasets and the splits each offers.
TORCHVISION_SPLITS: dict[str, tuple[str, ...]] = {
    "CIFAR10": ("train", "test"),
    "CIFAR100": ("train", "test"),
    "Caltech101": ("all",),
    "Food101": ("train", "test"),
    "OxfordIIITPet": ("trainval", "test"),
    "Flowers102": ("train", "val", "test"),
    "DTD": ("train", "val", "test"),
    "STL10": ("train", "test"),
}


class TorchvisionSource(StrictModel):
    """A torchvision dataset, downloaded by torchvision into the cache, written out as files."""

    kind: Literal["torchvision"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("local_dir",)
    cache_dir: str | None = Field(
        default=None, description="cache; null = $CLIPROBE_DATA_CACHE, else <user cache "
        "dir>/cliprobe (torchvision downloads into <cache>/torchvision)",
    )
    name: Literal["CIFAR10", "CIFAR100", "Caltech101", "Food101", "OxfordIIITPet",
                  "Flowers102", "DTD", "STL10"]
    split: str = "test"
    local_dir: str | None = Field(default=None, description="a torchvision root that already "
                                  "holds the dataset (never downloads)")

    @model_validator(mode="after")
    def _known_split(self) -> TorchvisionSource:
        allowed = TORCHVISION_SPLITS[self.name]
        if self.split not in allowed:
            raise ValueError(f"split {self.split!r} is not one of {list(allowed)} for "
                             f"{self.name}")
        return self


#: The 15 ImageNet-C benchmark corruptions and the 4 extras (names of the released folders).
IMAGENET_C_NAMES = Literal[
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate"]


class ImageNetCReleased(DownloadOptions):
    """The released ImageNet-C images of the selected validation images (Hendrycks &
    Dietterich 2019): from the tarballs, an extracted copy, or Zenodo (``download``)."""

    archive_dir: str | None = Field(default=None, description="a folder holding the released "
                                    "noise.tar, blur.tar, weather.tar, digital.tar, extra.tar")
    local_dir: str | None = Field(default=None, description="an extracted copy: "
                                  "<corruption>/<severity>/<wnid>/<file>.JPEG")
    download: bool = Field(default=False, description="download the tarballs from Zenodo "
                           "record 2235448 (tens of GB)")
    url: str = Field(default="https://zenodo.org/record/2235448/files/{family}.tar",
                     description="download: where each family's tarball is ({family} = noise, "
                     "blur, weather, digital, extra)")
    corruptions: list[IMAGENET_C_NAMES] = Field(
        default_factory=lambda: ["gaussian_noise", "shot_noise", "impulse_noise",
                                 "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
                                 "snow", "frost", "fog", "brightness", "contrast",
                                 "elastic_transform", "pixelate", "jpeg_compression"],
        min_length=1)
    severities: list[Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)

    @model_validator(mode="after")
    def _one_origin(self) -> ImageNetCReleased:
        if sum(map(bool, (self.archive_dir, self.local_dir, self.download))) != 1:
            raise ValueError("set exactly one of archive_dir, local_dir or download: true")
        return self


class ImageNetSource(DownloadOptions):
    """ImageNet-1k val (user-supplied archives) or ImageNet-V2 / -R / -A / -Sketch (downloaded).

    ``url`` / ``sha256`` / ``md5`` / ``filename`` null = cliprobe's pinned defaults per variant.
    """

    kind: Literal["imagenet"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("archive_dir", "local_dir")
    variant: Literal["val", "v2", "r", "a", "sketch"]
    url: str | None = None
    sha256: SHA256 | None = None
    md5: MD5 | None = None
    filename: str | None = None
    archive_dir: str | None = Field(default=None, description="val: folder holding "
                                    "ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz")
    local_dir: str | None = Field(default=None, description="an extracted copy: class folders "
                                  "named by WordNet id (or class index for v2)")
    imagenet_c: ImageNetCReleased | None = Field(
        default=None, description="val only: also take the released ImageNet-C images of the "
        "selected validation images (for the imagenet_c_released manipulation)")

    @model_validator(mode="after")
    def _imagenet_c_is_val(self) -> ImageNetSource:
        if self.imagenet_c is not None and self.variant != "val":
            raise ValueError("imagenet_c (the released ImageNet-C images) belongs to variant val")
        return self


class UrlListSource(DownloadOptions):
    """A CSV of image URLs and labels (``url,label``, optional ``sha256`` and ``file``)."""

    kind: Literal["url_list"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("csv", "local_dir")
    csv: str = Field(min_length=1, description="path of the CSV")
    concurrency: int = Field(default=8, ge=1, le=64, description="downloads at once")
    local_dir: str | None = Field(default=None, description="a folder already holding the "
                                  "images (named by the 'file' column, else the URL's name)")
    split: str = "all"


#: Formats of caption files (cliprobe.datasets.captions has one parser each).
CaptionFormat = Literal["karpathy_json", "clip_benchmark_txt", "coco_json", "csv"]


def _check_words(value: list[str] | None) -> list[str] | None:
    if value is not None:
        if not value or any(not word.strip() for word in value):
            raise ValueError("must be null or a list of non-empty words")
        if len(set(value)) != len(value):
            raise ValueError("words must be distinct")
    return value


class CaptionsSource(DownloadOptions):
    """Images with several captions each: a caption file (downloaded or local) plus the images.

    The caption file is ``captions_file`` (local), or ``annotations`` (downloaded and checked;
    ``annotations_member`` names the file inside it when it is an archive, e.g. Karpathy's
    ``caption_datasets.zip``). The images come from ``local_dir`` (a folder holding them at the
    caption file's paths, or by file name), ``archive_path`` or the ``images`` archive (only the
    split's images are extracted). Images have no class: ``words`` is the vocabulary the
    typographic attack writes from and the zero-shot classifier predicts (null = COCO's object
    categories without "person").
    """

    kind: Literal["captions"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("captions_file", "archive_path", "local_dir")
    format: CaptionFormat
    split: str = Field(default="test", description="karpathy_json: the split whose images "
                       "are used (train, restval, val, test)")
    annotations: RemoteFile | None = Field(default=None, description="the caption file, or an "
                                           "archive holding it")
    annotations_member: str | None = Field(default=None, description="the caption file's path "
                                           "inside the annotations archive")
    captions_file: str | None = Field(default=None, description="a local caption file (no "
                                      "download)")
    images: RemoteFile | None = Field(default=None, description="an archive of the images")
    archive_path: str | None = Field(default=None, description="a local copy of that archive")
    local_dir: str | None = Field(default=None, description="a folder holding the images")
    images_hint: str | None = Field(default=None, description="how to get the images, said "
                                    "when none of local_dir / archive_path / images is set")
    max_captions_per_image: int | None = Field(default=None, ge=1, description="keep the first "
                                               "n captions of each image; null = all")
    words: list[str] | None = Field(default=None, description="typographic / zero-shot "
                                    "vocabulary; null = COCO's categories without 'person'")

    @field_validator("words")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        return _check_words(value)

    @model_validator(mode="after")
    def _has_captions(self) -> CaptionsSource:
        if not (self.captions_file or self.annotations):
            raise ValueError("set captions_file or annotations")
        return self


class CaptionsFolderSource(StrictModel):
    """Your own captioned images: a folder plus a CSV ``path,caption`` (rows per caption)."""

    kind: Literal["captions_folder"]
    LOCAL_INPUTS: ClassVar[tuple[str, ...]] = ("path", "captions_csv")
    path: str = Field(description="the folder holding the images")
    captions_csv: str = Field(description="CSV with columns path (relative to the folder) and "
                              "caption; several rows per image allowed")
    words: list[str] | None = Field(default=None, description="typographic / zero-shot "
                                    "vocabulary; null = COCO's categories without 'person'")

    @field_validator("words")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        return _check_words(value)


DatasetSource = Annotated[
    SampleSource | ImageFolderSource | TypographicInTheWildSource | KaggleSource | ArchiveSource
    | OxfordParisSource | TorchvisionSource | ImageNetSource | UrlListSource | CaptionsSource
    | CaptionsFolderSource,
    Field(discriminator="kind"),
]


class SubsampleConfig(StrictModel):
    """Seed 001's subsampling: N classes and/or M images per class, chosen with a seed."""

    classes: int | None = Field(default=None, gt=0)
    per_class: int | None = Field(default=None, gt=0)
    seed: int = 0


class ProbeTrainConfig(StrictModel):
    """The literature linear probe's data: the dataset's official train split (and validation
    split where one is published), fetched and embedded beside the evaluated split."""

    split: str = Field(min_length=1, description="the official train split (train, trainval)")
    val_split: str | None = Field(default=None, description="the official validation split "
                                  "(Flowers-102, DTD: val); null = hold out val_fraction of "
                                  "the train split, as the CLIP paper does")
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    per_class: int | None = Field(default=None, gt=0, description="at most this many train "
                                  "(and validation) images per class, seeded; null = all")
    seed: int = 0


class DatasetConfig(StrictModel):
    """One dataset: where its images come from, how it is subsampled, and what it is."""

    source: DatasetSource
    subsample: SubsampleConfig = SubsampleConfig()
    descriptions_csv: str | None = Field(
        default=None, description="CSV label,description: the class texts of the "
        "'descriptions' prompt set",
    )
    label_map: dict[str, str] = Field(
        default_factory=dict, description="rename classes after fetching (sad -> sadness)",
    )
    probe_train: ProbeTrainConfig | None = Field(
        default=None, description="the literature linear probe: train on the official train "
        "split, choose C on a validation split, test on the evaluated split; null = the "
        "dataset has no official train split (only seed 002's within-split probe runs)")
    license: str | None = Field(default=None, description="license note, kept in the manifest")
    version: str | None = Field(default=None, description="dataset version, kept in the manifest")
    prompts: str | None = Field(
        default=None, description="the dataset's own class names and templates: bundled prompt "
        "data (src/cliprobe/prompt_data: clip_cifar10, clip_imagenet, photo_of, ...) or the "
        "path of a YAML file of the same shape; used by the default prompt set `dataset`; "
        "null = photo_of",
    )

    def local_inputs(self) -> dict[str, str]:
        """``source.<field>`` -> path of every file or folder on this machine the fetch stage
        reads (the source's ``LOCAL_INPUTS`` that are set): what the scan stage lists by
        content, so a photo added, replaced or deleted there re-runs this dataset's cells."""
        return {f"source.{name}": value for name in self.source.LOCAL_INPUTS
                if (value := getattr(self.source, name)) is not None}

    @model_validator(mode="after")
    def _probe_train_has_an_official_split(self) -> DatasetConfig:
        if self.probe_train is None:
            return self
        if not isinstance(self.source, TorchvisionSource):
            raise ValueError("probe_train needs a source with official splits (the torchvision "
                             "datasets); this source has none: set probe_train to null")
        allowed = TORCHVISION_SPLITS[self.source.name]
        for split in (self.probe_train.split, self.probe_train.val_split):
            if split is not None and (split not in allowed or split == self.source.split):
                raise ValueError(f"probe_train split {split!r} must be another official split "
                                 f"of {self.source.name} than the evaluated {self.source.split!r}"
                                 f" (one of {list(allowed)})")
        return self

    @field_validator("prompts")
    @classmethod
    def _known_prompt_data(cls, value: str | None) -> str | None:
        from cliprobe.prompt_data import bundled_names

        if value is None or "/" in value or value.endswith((".yaml", ".yml")):
            return value  # a file: read (and checked) by the classifier stage
        if value not in bundled_names():
            raise ValueError(f"unknown prompt data {value!r}; bundled: "
                             f"{', '.join(bundled_names())}, or the path of a YAML file")
        return value


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
    worker: bool = Field(
        default=True, description="hand a model's stages to a warm worker process that keeps "
        "the model loaded (same outputs; see cliprobe.worker)")
    worker_idle_s: float = Field(default=120.0, gt=0,
                                 description="seconds an idle worker waits before it stops")
    decode_once: bool = Field(
        default=True, description="decode and construct ImageNet-C's Resize + CenterCrop "
        "images once per dataset and reuse them in every cell (same pixels)")

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
    seed001_own_image: Literal["exclude", "include"] = Field(
        default="exclude",
        description="seed 001's score on the local gallery: exclude the query's own clean image "
        "from its neighbours (leave-one-out, like the seed's LAION-5B index, which does not "
        "hold the query photo) or include it (it adds up to 1/N)",
    )
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
    class_names: Literal["dataset", "labels"] = Field(
        default="dataset",
        description="dataset: fill templates with the class names of the dataset's prompt data "
        "(the CLIP paper's, OpenAI's ImageNet names with their two duplicates); labels: with "
        "the dataset's labels (ImageNet: the two duplicates renamed 'projectile', 'sunglass')",
    )
    classes: Literal["all", "present"] = Field(
        default="all",
        description="all: the classifier keeps the dataset's full label set when classes are "
        "subsampled (C-way accuracy over all classes, as published); present: only the classes "
        "left after subsampling",
    )
    word_query: str = Field(
        default="a photo of a {}",
        description="the caption searched for a written word ({} = the word's class name): "
        "typographic cells report how often it scores the attacked image above its clean self",
    )

    @field_validator("word_query")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        if value.count("{}") != 1:
            raise ValueError("must hold exactly one {} (the word)")
        return value


class OcclusionSettings(StrictModel):
    """Occlusion sensitivity: a square slid over the model's input, its probability drops."""

    window: float = Field(default=0.25, gt=0, le=1,
                          description="square side as a fraction of the input side")
    stride: float = Field(default=0.125, gt=0, le=1,
                          description="step between windows, fraction of the input side")
    fill: str = Field(default="#808080", description="colour of the hidden square")

    @field_validator("fill")
    @classmethod
    def _colour(cls, value: str) -> str:
        from PIL import ImageColor

        try:
            ImageColor.getrgb(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a colour Pillow knows") from None
        return value


class SaliencyConfig(StrictModel):
    """Saliency maps of the zero-shot decision, only for the cells listed (they are costly)."""

    cells: list[str] = Field(
        default_factory=list, description="cells whose images get maps: manipulation names, "
        "or 'original' (real typographic photos); [] = none")
    methods: list[Literal["gradcam", "occlusion"]] = Field(
        default_factory=lambda: ["gradcam", "occlusion"], min_length=1)
    max_images: int | None = Field(
        default=16, gt=0, description="images per cell, a seeded random subset; null = all")
    map_side: int = Field(default=56, ge=4, le=512,
                          description="stored maps are map_side x map_side (area-averaged)")
    batch_size: int = Field(default=16, gt=0,
                            description="occluded copies per forward pass (speed only)")
    occlusion: OcclusionSettings = OcclusionSettings()

    @field_validator("methods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


#: The Open English WordNet 2024 release (WN-LMF XML, CC BY 4.0), as ``wn``'s index lists it.
OEWN_2024_URL = ("https://github.com/globalwordnet/english-wordnet/releases/download/"
                 "2024-edition/english-wordnet-2024.xml.gz")


class WordnetConfig(DownloadOptions):
    """The WordNet lexicon of the lexical proximity measure, fetched like a dataset."""

    lexicon: str | None = Field(default="oewn:2024", description="id:version of the lexicon "
                                "in the file; null = no WordNet measure")
    url: str = Field(default=OEWN_2024_URL, description="WN-LMF file (.xml or .xml.gz)")
    sha256: SHA256 | None = Field(default=None, description="null = recorded at the first "
                                  "download and enforced afterwards (none is published)")
    local_file: str | None = Field(default=None, description="a local copy: no download")
    senses: Literal["max", "first"] = Field(
        default="max", description="max: best over all noun-sense pairs; first: first senses")


class ProximityConfig(StrictModel):
    """How close a written word is to the object: text-space cosine and WordNet similarity."""

    wordnet: WordnetConfig = WordnetConfig()


class Params(StrictModel):
    """The whole of ``params.yaml``."""

    seed: int = 0
    model: dict[str, ModelConfig]
    dataset: dict[str, DatasetConfig]
    manipulation: dict[str, ManipulationConfig] = Field(default_factory=dict)
    embed: EmbedConfig = EmbedConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    stats: StatsConfig = StatsConfig()
    prompts: PromptSet = PromptSet(name="dataset", kind="dataset")
    zeroshot: ZeroshotConfig = ZeroshotConfig()
    saliency: SaliencyConfig = SaliencyConfig()
    proximity: ProximityConfig = ProximityConfig()
    cell_shards: dict[str, list[str]] | None = Field(
        default=None, description="which pipelines/cells-<k>/dvc.yaml holds each manipulation "
        "(computed at composition; load_params checks it against the manipulations)")

    @model_validator(mode="after")
    def _saliency_cells_are_selected(self) -> Params:
        for position, cell in enumerate(self.saliency.cells):
            if cell != "original" and cell not in self.manipulation:
                raise ValueError(
                    f"saliency.cells.{position}: {cell!r} is neither 'original' nor a selected "
                    f"manipulation ({', '.join(self.manipulation) or 'none selected'})")
        return self

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
        if "train_split" in value:
            raise ValueError("'train_split' names the embeddings of a dataset's official train "
                             "split; give the manipulation another name")
        if "original" in value:
            raise ValueError(
                "'original' is the clean baseline, computed by the embed stage for every model "
                "and dataset; do not select it as a manipulation"
            )
        return value
