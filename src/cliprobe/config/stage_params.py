"""What each stage reads (params and code): the one place that decides it.

DVC re-reads and re-parses the whole ``params.yaml`` once for every stage that declares
``params:`` from it, rewrites the whole ``dvc.lock`` after every stage, and hashes every code
folder a stage lists, once per stage (``../shared/DVC_HYDRA.md``); and a stage that declares a
whole section re-runs for settings it never uses (a kNN timeout, an unused FAISS setting). So
the pipeline's first stage, ``split_params``, is the only one that depends on ``params.yaml``
(as a file, which DVC hashes but never parses; ``dvc params diff`` and ``dvc exp show`` still
show every param) and on the code folders.
It writes one small JSON *spec* per stage and cell, ``data/params/<stage>/<cell>.json``: the
stage's *effective* params (the same nesting as ``params.yaml``, only the keys that can change
its outputs) and a fingerprint of the code it runs. Every other stage depends on its spec and
its data, and reads nothing else:

- a model's ``rmac_scales`` / ``multipatch_overlap`` only for that feature variant, its
  ``random_init_seed`` only for random weights;
- a manipulation's parameters validated by its registry schema (defaults filled in), with the
  global seed its per-image randomness derives from;
- retrieval: the index kind and only that kind's parameters, PCA / k-means settings only when
  enabled, the remote kNN service only when enabled and without its timeouts, retries,
  concurrency and cache folders;
- ``execution.json``: batch size, workers, device, backend, the kNN service's transport: how
  the work runs, not its results, so it is read but never a dependency.

One dependency per stage instead of a dozen keeps ``dvc.lock`` small, and DVC's time per stage
with it.

Adding a stage: give it an entry in :data:`STAGES` (its matrix axes, the parts of the params it
reads, its code), and in ``dvc.yaml`` the command ``python -m cliprobe.stages <module> --params
<its spec>``, its spec and data as ``deps``, and its code folders among ``split_params``'s deps
(a test checks dvc.yaml against :data:`STAGES`). Read the params with
:func:`load_stage_params`. A stage declared the old way (``params:`` from ``params.yaml``, code
folders as deps, run with ``--params params.yaml``) still works: :func:`load_stage_params` then
slices ``params.yaml`` in memory with the same builders.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from cliprobe import paths
from cliprobe.config.schema import (
    DatasetConfig,
    EmbedConfig,
    ManipulationConfig,
    ModelConfig,
    Params,
    ProbeTrainConfig,
    ProximityConfig,
    RetrievalConfig,
    SaliencyConfig,
    StatsConfig,
    StrictModel,
    ZeroshotConfig,
)
from cliprobe.errors import ConfigError
from cliprobe.prompts import PromptSet

#: Where ``split_params`` writes the per-stage files (a DVC output; stages depend on files in it).
SPLIT_DIR = paths.DATA / "params"

#: The grid axes a file or a stage can be templated by.
AXES = ("model", "dataset", "manipulation")


class Grid(StrictModel):
    """The names selected on each axis (what the summary stages iterate over)."""

    model: list[str]
    dataset: list[str]
    manipulation: list[str]


class StageParams(StrictModel):
    """The params one stage reads: any subset of ``params.yaml`` (absent sections are None)."""

    seed: int | None = None
    model: dict[str, ModelConfig] = Field(default_factory=dict)
    dataset: dict[str, DatasetConfig] = Field(default_factory=dict)
    manipulation: dict[str, ManipulationConfig] = Field(default_factory=dict)
    embed: EmbedConfig | None = None
    retrieval: RetrievalConfig | None = None
    stats: StatsConfig | None = None
    prompts: PromptSet | None = None
    zeroshot: ZeroshotConfig | None = None
    grid: Grid | None = None
    #: only the keys the stage reads (see :data:`PARTS`); absent keys hold their defaults
    saliency: SaliencyConfig | None = None
    proximity: ProximityConfig | None = None
    #: the dataset's ``descriptions_csv`` and ``prompts`` (its prompt data): the classifier's
    #: only dataset settings
    descriptions_csv: str | None = None
    dataset_prompts: str | None = None
    #: the dataset's ``probe_train`` (the literature probe's official split; score_original)
    probe_train: ProbeTrainConfig | None = None


# --- effective params: what can change a stage's outputs -------------------------------------

def effective_model(config: ModelConfig) -> dict[str, Any]:
    """A model's settings without those its feature variant or weights never use."""
    data = config.model_dump(mode="json")
    if config.features != "rmac":
        data.pop("rmac_scales")
    if config.features != "multipatch":
        data.pop("multipatch_overlap")
    if not config.is_random:
        data.pop("random_init_seed")
    return data


#: Remote kNN settings that change how results are fetched, never which results come back.
REMOTE_TRANSPORT_KEYS = ("timeout_s", "retries", "backoff_s", "cache_dir", "image_cache",
                         "max_concurrency")


def effective_retrieval(config: RetrievalConfig) -> dict[str, Any]:
    """Retrieval settings without those of unused backends and the remote service's transport."""
    data = config.model_dump(mode="json")
    data["index"] = {"kind": config.index.kind, **config.index.params()}
    for optional in ("pca", "kmeans"):
        if not data[optional]["enabled"]:
            data[optional] = {"enabled": False}
    if config.remote.enabled:
        for key in REMOTE_TRANSPORT_KEYS:
            data["remote"].pop(key)
    else:
        data["remote"] = {"enabled": False}
    return data


def _manipulation_entry(params: Params, name: str) -> dict[str, Any]:
    from cliprobe.config.loading import manipulation_params

    entry = params.manipulation[name]
    validated = manipulation_params(name, entry.function, entry.params)
    return {"function": entry.function, **validated.model_dump(mode="json")}


def _grid(params: Params) -> dict[str, Any]:
    return {"grid": {"model": list(params.model), "dataset": list(params.dataset),
                     "manipulation": list(params.manipulation)}}


#: Retrieval settings the summary's seed 001 table states in its legend.
SEED001_LEGEND_KEYS = ("neighbours", "threshold", "seed001_own_image")

#: Saliency settings that change how fast maps are computed, never the maps.
SALIENCY_SPEED_KEYS = ("batch_size",)


def _saliency_cell(params: Params, name: str) -> dict[str, Any]:
    """A saliency cell's settings: its methods, their params and the cell's manipulation."""
    settings = params.saliency.model_dump(mode="json", exclude={"cells", *SALIENCY_SPEED_KEYS})
    manipulation = ({} if name == paths.CLEAN
                    else {"manipulation": {name: _manipulation_entry(params, name)}})
    return {"seed": params.seed, "stats": params.stats.model_dump(mode="json"),
            "saliency": settings, **manipulation}


# --- the parts: builders of one partial params mapping each -----------------------------------

Builder = Callable[[Params, str], dict[str, Any]]


@dataclass(frozen=True)
class Part:
    """A part of the params some stages read: a builder over one name of ``axis`` (None: the
    whole grid)."""

    build: Builder
    axis: str | None = None


PARTS: dict[str, Part] = {
    "model": Part(axis="model",
                  build=lambda p, name: {"model": {name: effective_model(p.model[name])}}),
    "dataset": Part(axis="dataset", build=lambda p, name: {
        "dataset": {name: p.dataset[name].model_dump(mode="json")}}),
    "manipulation": Part(axis="manipulation", build=lambda p, name: {
        "seed": p.seed, "manipulation": {name: _manipulation_entry(p, name)}}),
    "classifier": Part(axis="dataset", build=lambda p, name: {
        "prompts": p.prompts.model_dump(mode="json"),
        "zeroshot": {"extend_with_words": p.zeroshot.extend_with_words,
                     "extra_classes": list(p.zeroshot.extra_classes),
                     "word_query": p.zeroshot.word_query,
                     "class_names": p.zeroshot.class_names, "classes": p.zeroshot.classes},
        # the only dataset settings the classifier reads: the 'descriptions' prompts' CSV and
        # the dataset's own prompt data (class names and templates of the `dataset` prompts)
        "descriptions_csv": p.dataset[name].descriptions_csv,
        "dataset_prompts": p.dataset[name].prompts}),
    "score": Part(build=lambda p, _: {
        "seed": p.seed, "retrieval": effective_retrieval(p.retrieval),
        "stats": p.stats.model_dump(mode="json")}),
    "probe": Part(build=lambda p, _: {
        "seed": p.seed, "zeroshot": {"probe_test_fraction": p.zeroshot.probe_test_fraction}}),
    # the literature probe's official train split (None: the dataset has none)
    "probe_train": Part(axis="dataset", build=lambda p, name: {
        "probe_train": (None if (train := p.dataset[name].probe_train) is None
                        else train.model_dump(mode="json"))}),
    "summary": Part(build=lambda p, _: {
        "seed": p.seed, "stats": p.stats.model_dump(mode="json"), **_grid(p),
        # seed001_table.md's legend states the score's N, t and own-image choice
        "retrieval": {key: getattr(p.retrieval, key) for key in SEED001_LEGEND_KEYS}}),
    "figures": Part(build=lambda p, _: {
        "seed": p.seed, **_grid(p), "saliency": {"cells": list(p.saliency.cells)},
        "manipulation": {n: _manipulation_entry(p, n) for n in p.manipulation}}),
    "saliency": Part(axis="manipulation", build=_saliency_cell),
    "words": Part(build=lambda p, _: {
        "seed": p.seed, "stats": p.stats.model_dump(mode="json"), **_grid(p),
        "proximity": p.proximity.model_dump(mode="json"),
        "saliency": {"cells": list(p.saliency.cells)}}),
    "report": Part(build=lambda p, _: {
        "seed": p.seed, "retrieval": effective_retrieval(p.retrieval),
        "stats": p.stats.model_dump(mode="json"), **_grid(p)}),
}

#: Execution settings (never a dependency): read by every stage from the split folder.
EXECUTION_FILE = "execution.json"


def execution_params(params: Params) -> dict[str, Any]:
    """How the work runs: embedding execution, the kNN service's transport, saliency batches."""
    return {"embed": params.embed.model_dump(mode="json"),
            "retrieval": {"remote": {key: getattr(params.retrieval.remote, key)
                                     for key in REMOTE_TRANSPORT_KEYS}},
            "saliency": {key: getattr(params.saliency, key) for key in SALIENCY_SPEED_KEYS}}


@dataclass(frozen=True)
class StageSpec:
    """A DVC stage: its matrix axes, the parts of the params it reads and its code.

    ``cells``: where the stage's ``manipulation`` axis comes from when not the selected
    manipulations (the saliency stage runs over ``saliency.cells``).
    """

    axes: tuple[str, ...]
    parts: tuple[str, ...]
    code: tuple[str, ...]
    cells: Callable[[Params], list[str]] | None = None


_EMBED_CODE = ("src/cliprobe/stages/embed.py", "src/cliprobe/embedding", "src/cliprobe/models",
               "src/cliprobe/images.py")
_SCORE_CODE = ("src/cliprobe/stages/score.py", "src/cliprobe/scores", "src/cliprobe/retrieval",
               "src/cliprobe/metrics")

#: Every stage but split_params: what it is run over, reads and runs. Code paths are relative to
#: the project root; the model only for the score stages' remote kNN score (it embeds results).
STAGES: dict[str, StageSpec] = {
    "fetch": StageSpec(("dataset",), ("dataset",),
                       ("src/cliprobe/stages/fetch.py", "src/cliprobe/datasets")),
    "embed": StageSpec(("model", "dataset"), ("model",), _EMBED_CODE),
    "manipulate": StageSpec(("model", "dataset", "manipulation"), ("model", "manipulation"),
                            (*_EMBED_CODE, "src/cliprobe/manipulations",
                             "src/cliprobe/seeding.py")),
    "classifier": StageSpec(("model", "dataset"), ("model", "classifier"),
                            ("src/cliprobe/stages/classifier.py",
                             "src/cliprobe/metrics/zeroshot.py", "src/cliprobe/prompts.py",
                             "src/cliprobe/prompt_data", "src/cliprobe/models",
                             "src/cliprobe/io/classifier.py")),
    "captions": StageSpec(("model", "dataset"), ("model",),
                          ("src/cliprobe/stages/captions.py", "src/cliprobe/models",
                           "src/cliprobe/metrics/zeroshot.py",
                           "src/cliprobe/io/caption_embeddings.py")),
    "score_original": StageSpec(("model", "dataset"), ("model", "score", "probe", "probe_train"),
                                _SCORE_CODE),
    "score": StageSpec(("model", "dataset", "manipulation"), ("model", "score"), _SCORE_CODE),
    "saliency": StageSpec(("model", "dataset", "manipulation"), ("model", "saliency"),
                          ("src/cliprobe/stages/saliency.py", "src/cliprobe/saliency",
                           "src/cliprobe/models", "src/cliprobe/manipulations",
                           "src/cliprobe/images.py"),
                          cells=lambda p: list(p.saliency.cells)),
    "aggregate": StageSpec((), ("summary",),
                           ("src/cliprobe/stages/aggregate.py", "src/cliprobe/metrics")),
    "words": StageSpec((), ("words",), ("src/cliprobe/stages/words.py",
                                        "src/cliprobe/proximity")),
    "plot": StageSpec((), ("figures",), ("src/cliprobe/stages/plot.py", "src/cliprobe/plots",
                                         "src/cliprobe/metrics/changes.py",
                                         "src/cliprobe/metrics/registry.py",
                                         "src/cliprobe/manipulations")),
    "report": StageSpec((), ("report",), ("src/cliprobe/stages/report.py",
                                          "src/cliprobe/report",
                                          "src/cliprobe/metrics/changes.py",
                                          "src/cliprobe/metrics/registry.py")),
}


def spec_path(stage: str, **cell: str) -> Path:
    """Where ``split_params`` writes the spec of ``stage`` for ``cell`` (under SPLIT_DIR)."""
    axes = STAGES[stage].axes
    missing = [a for a in axes if a not in cell]
    if missing:
        raise ValueError(f"stage {stage} runs per {'/'.join(axes)}: pass {', '.join(missing)}")
    if not axes:
        return Path(f"{stage}.json")
    return Path(stage, *(cell[a] for a in axes[:-1]), f"{cell[axes[-1]]}.json")


def dependency_path(stage: str) -> str:
    """The spec's path in dvc.yaml (DVC templating with ``${item.<axis>}``)."""
    template = spec_path(stage, **{a: f"${{item.{a}}}" for a in AXES})
    return (SPLIT_DIR / template).as_posix()


def code_fingerprint(paths: tuple[str, ...], root: Path = Path(".")) -> str:
    """sha256 over the files under ``paths`` (relative names and bytes; byte-code skipped)."""
    digest = hashlib.sha256()
    for entry in paths:
        base = root / entry
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for file in files:
            if not file.is_file() or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def stage_mapping(params: Params, stage: str, **cell: str) -> dict[str, Any]:
    """The params ``stage`` reads for ``cell``, sliced from the whole params in memory."""
    merged: dict[str, Any] = {}
    for name in STAGES[stage].parts:
        part = PARTS[name]
        if part.axis is not None and part.axis not in cell:
            raise ValueError(f"stage {stage} reads per-{part.axis} params: pass {part.axis}")
        _merge(merged, part.build(params, cell[part.axis] if part.axis else ""))
    return merged


def _names(params: Params, spec: StageSpec, axis: str) -> list[str]:
    if axis == "manipulation" and spec.cells is not None:
        return spec.cells(params)
    return list(getattr(params, axis))


def split(params: Params, root: Path = Path(".")) -> dict[Path, dict[str, Any]]:
    """Every file of the split (relative to SPLIT_DIR): one spec per stage and cell, each with
    its code's fingerprint (files under ``root``), and the execution settings."""
    files: dict[Path, dict[str, Any]] = {Path(EXECUTION_FILE): execution_params(params)}
    for stage, spec in STAGES.items():
        code = code_fingerprint(spec.code, root)
        for values in itertools.product(*(_names(params, spec, a) for a in spec.axes)):
            cell = dict(zip(spec.axes, values, strict=True))
            files[spec_path(stage, **cell)] = {**stage_mapping(params, stage, **cell),
                                               "code": code}
    return files


#: Execution sections every stage reads; the others join a section the stage's spec has.
EXECUTION_EVERYWHERE = ("embed", "retrieval")


def _add_execution(mapping: dict[str, Any], execution: Mapping[str, Any]) -> None:
    """Merge the execution settings into a stage's params (saliency's batch size only into
    the stages that read saliency settings)."""
    _merge(mapping, {key: value for key, value in execution.items()
                     if key in EXECUTION_EVERYWHERE or key in mapping})


def _merge(target: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _split_root(spec: Path) -> Path:
    """The split folder a spec file lives in (the ancestor holding execution.json)."""
    for folder in spec.parents:
        if (folder / EXECUTION_FILE).is_file():
            return folder
    raise ConfigError(f"{spec} is not inside a params split (no {EXECUTION_FILE} above it): "
                      "run `dvc repro split_params`")


def read_params(stage: str, source: Path, **cell: str) -> dict[str, Any]:
    """The params mapping ``stage`` reads for ``cell`` (not validated).

    ``source`` is the stage's spec (a .json file ``split_params`` wrote: the pipeline's way),
    the split folder (the spec is found in it), or a ``params.yaml`` file (sliced in memory,
    for stages run by hand or declared the old way). Execution settings are added in all cases.
    """
    if source.suffix == ".json" or source.is_dir():
        file = source if source.suffix == ".json" else source / spec_path(stage, **cell)
        if not file.is_file():
            names = ", ".join(f"{a} '{cell.get(a)}'" for a in STAGES[stage].axes)
            raise ConfigError(f"{file} does not exist: {names or 'the stage'} not selected in "
                              "params.yaml, or split_params has not run "
                              "(`dvc repro split_params`)")
        mapping = json.loads(file.read_text())
        mapping.pop("code", None)
        root = source if source.is_dir() else _split_root(file)
        _add_execution(mapping, json.loads((root / EXECUTION_FILE).read_text()))
        return mapping
    from cliprobe.config.loading import load_params

    params = load_params(source)
    _check_selected(params, cell, source)
    mapping = stage_mapping(params, stage, **cell)
    _add_execution(mapping, execution_params(params))
    return mapping


def load_stage_params(stage: str, source: Path, **cell: str) -> StageParams:
    """Validated params of ``stage`` for ``cell`` from ``source`` (see :func:`read_params`)."""
    mapping = read_params(stage, source, **cell)
    try:
        return StageParams.model_validate(mapping)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"invalid params for stage {stage} from {source}: {error}") from None


def _check_selected(params: Params, cell: Mapping[str, str], source: Path) -> None:
    groups = {"model": params.model, "dataset": params.dataset,
              "manipulation": params.manipulation}
    for axis, name in cell.items():
        if axis == "manipulation" and name == paths.CLEAN:
            continue
        if name not in groups[axis]:
            raise ConfigError(
                f"{axis} '{name}' is not selected in {source}; selected: "
                f"{', '.join(groups[axis]) or 'none'} (compose conf/ again or fix the stage)"
            )


def write_split(params: Params, split_dir: Path = SPLIT_DIR, root: Path = Path(".")) -> int:
    """Write every file of the split into ``split_dir`` (replacing it whole); their count.

    JSON with sorted keys, so a file's bytes change only when its params or code do, and DVC
    stops propagating at every stage whose spec came out identical.
    """
    import shutil

    from cliprobe.io.atomic import write_text

    files = split(params, root)
    staging = split_dir.with_name(f".{split_dir.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    for relative, content in files.items():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps(content, sort_keys=True, indent=1) + "\n")
    shutil.rmtree(split_dir, ignore_errors=True)
    staging.rename(split_dir)
    return len(files)
