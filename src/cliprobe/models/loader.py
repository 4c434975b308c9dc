"""Build a CLIP model and its preprocessing from a model config, or fail in one sentence.

Everything model-specific comes from open_clip (architectures, pretrained tags, mean/std,
interpolation, QuickGELU) or from ``conf/model/*.yaml``; pipeline code never branches on model
names. Weights are resolved before the model is built, so an offline machine with an empty
cache gets :class:`~cliprobe.errors.MissingWeightsError` at once instead of a minute of
retries and a stack trace, and random weights are only ever used when asked for.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliprobe.config.schema import ModelConfig
from cliprobe.errors import ConfigError, MissingWeightsError
from cliprobe.provenance import RANDOM_WEIGHTS_LABEL

CONFIG_DIR = Path(__file__).with_name("configs")
HUB_HOST = ("huggingface.co", 443)
CACHE_ENV = "CLIPROBE_MODEL_CACHE"
#: Set to 1 to never try a download (also honoured: HF_HUB_OFFLINE=1).
OFFLINE_ENV = "CLIPROBE_OFFLINE"


@dataclass
class LoadedModel:
    """A model ready to embed: the module, its eval preprocessing and its provenance."""

    name: str
    config: ModelConfig
    model: Any
    preprocess: Callable[[Any], Any]
    tokenizer: Callable[..., Any]
    device: str
    embed_dim: int
    weights: str
    provenance: dict[str, Any] = field(default_factory=dict)


def resolve_device(requested: str = "auto") -> str:
    """``auto`` -> cuda if available, else mps, else cpu; anything else is passed through."""
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _register_own_configs() -> None:
    import open_clip

    if "cliprobe-smoke" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def cache_dir() -> str | None:
    """Where pretrained weights are cached: $CLIPROBE_MODEL_CACHE, else the HF hub default."""
    return os.environ.get(CACHE_ENV) or None


def _cache_location() -> str:
    if cache_dir():
        return str(cache_dir())
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _network_reachable(address: tuple[str, int] = HUB_HOST, timeout: float = 3.0) -> bool:
    if os.environ.get(OFFLINE_ENV) == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _cached_checkpoint(tag_cfg: dict[str, Any]) -> str | None:
    """The cached checkpoint file of a pretrained tag, without touching the network."""
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import hf_hub_download

        repo_id, filename = os.path.split(hub)
        candidates = [filename] if filename else [
            "open_clip_model.safetensors", "open_clip_pytorch_model.bin"
        ]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            try:
                return hf_hub_download(
                    repo_id=repo_id, filename=candidate, cache_dir=cache_dir(),
                    local_files_only=True,
                )
            except Exception:
                continue
        return None
    url = tag_cfg.get("url", "")
    if url:
        target = Path(cache_dir() or Path("~/.cache/clip").expanduser()) / os.path.basename(url)
        return str(target) if target.is_file() else None
    return None


def _missing_weights_message(name: str, config: ModelConfig, reason: str) -> str:
    return (
        f"model '{name}' (open_clip {config.arch}, pretrained '{config.pretrained}') has no "
        f"weights in the cache {_cache_location()} and {reason}: download them once on a "
        f"machine with network (python -c \"import open_clip; open_clip.create_model("
        f"'{config.arch}', pretrained='{config.pretrained}')\") and copy that cache here "
        f"(or point ${CACHE_ENV} at it), or set model.{name}.pretrained=/path/to/checkpoint, "
        "or run offline with the random-weight model=smoke (`dvc exp run -S model=smoke` or "
        "`make repro OVERRIDES=model=smoke`)"
    )


#: Weight files open_clip looks for in a model folder (hf-hub repository or local-dir).
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CONFIG_FILE = "open_clip_config.json"


def _schema_message(name: str, config: ModelConfig, reason: str) -> str:
    return (
        f"model '{name}' ({config.arch}) {reason}: download it once on a machine with network "
        f"(python -c \"import open_clip; open_clip.create_model_and_transforms("
        f"'{config.arch}')\") and copy the cache ({_cache_location()}) here (or point "
        f"${CACHE_ENV} at it), or set model.{name}.arch=local-dir:/path/to/a/folder holding "
        f"{CONFIG_FILE} and the weights, or run offline with model=smoke"
    )


def _local_model_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and any((folder / w).is_file() for w in WEIGHT_FILES)


def _cached_hub_folder(repo_id: str) -> Path | None:
    """The cached snapshot folder of an hf-hub model (config + weights), without network."""
    from huggingface_hub import hf_hub_download

    try:
        config_file = hf_hub_download(repo_id=repo_id, filename=CONFIG_FILE,
                                      cache_dir=cache_dir(), local_files_only=True)
    except Exception:
        return None
    folder = Path(config_file).parent
    for weights in WEIGHT_FILES:
        try:
            hf_hub_download(repo_id=repo_id, filename=weights, cache_dir=cache_dir(),
                            local_files_only=True)
            return folder
        except Exception:
            continue
    return None


def resolve_model_name(name: str, config: ModelConfig) -> str:
    """The open_clip model name to build ``config`` from.

    An architecture name is returned as it is. ``local-dir:/path`` must hold open_clip's
    config and weights; ``hf-hub:org/repo`` is taken from the cache (downloaded first when the
    network allows) and built as ``local-dir:<cached snapshot>``, so a cached model never
    touches the network. Raises :class:`MissingWeightsError` in one sentence otherwise.
    """
    if not config.names_its_weights:
        return config.arch
    schema, identifier = config.arch.split(":", 1)
    if not identifier:
        raise ConfigError(f"invalid configuration at model.{name}.arch: {schema}: needs a "
                          f"{'repository id' if schema == 'hf-hub' else 'folder'} after it")
    if schema == "local-dir":
        folder = Path(identifier).expanduser()
        if not _local_model_folder(folder):
            raise MissingWeightsError(
                f"model '{name}': {folder} is not a model folder (it needs {CONFIG_FILE} and "
                f"{' or '.join(WEIGHT_FILES)}); fix model.{name}.arch=local-dir:/path")
        return f"local-dir:{folder}"
    cached = _cached_hub_folder(identifier)
    if cached is not None:
        return f"local-dir:{cached}"
    if not _network_reachable():
        raise MissingWeightsError(_schema_message(
            name, config, f"is not in the cache {_cache_location()} and cannot be downloaded "
                          "(no network)"))
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(repo_id=identifier, filename=CONFIG_FILE, cache_dir=cache_dir())
        last: Exception | None = None
        for weights in WEIGHT_FILES:
            try:
                hf_hub_download(repo_id=identifier, filename=weights, cache_dir=cache_dir())
                break
            except Exception as error:  # the repository may hold only one of the two
                last = error
        else:
            raise last or RuntimeError("no weights file")
    except Exception as error:
        raise MissingWeightsError(_schema_message(
            name, config, f"could not be downloaded ({type(error).__name__}: "
                          f"{' '.join(str(error).split())[:160]})")) from None
    cached = _cached_hub_folder(identifier)
    if cached is None:  # pragma: no cover - just downloaded
        raise MissingWeightsError(_schema_message(name, config, "is missing after download"))
    return f"local-dir:{cached}"


def resolve_checkpoint(name: str, config: ModelConfig) -> tuple[str | None, dict[str, Any]]:
    """The checkpoint file for ``config`` and the pretrained tag's config ({} for files).

    Models named ``hf-hub:`` / ``local-dir:`` carry their weights: they are checked (and
    fetched) by :func:`resolve_model_name`, and give ``(None, {})``. Raises
    :class:`ConfigError` for unknown architectures or tags and :class:`MissingWeightsError`
    when the weights are neither cached nor downloadable.
    """
    import open_clip

    if config.names_its_weights:
        resolve_model_name(name, config)
        return None, {}
    _register_own_configs()
    if config.arch not in open_clip.list_models():
        raise ConfigError(
            f"invalid configuration at model.{name}.arch: unknown open_clip architecture "
            f"{config.arch!r}; valid: {', '.join(sorted(open_clip.list_models()))}"
        )
    if config.pretrained is None:
        return None, {}
    if config.pretrained_is_file or Path(config.pretrained).is_file():
        if not Path(config.pretrained).is_file():
            raise MissingWeightsError(
                f"model '{name}': checkpoint file {config.pretrained} does not exist; fix "
                f"model.{name}.pretrained"
            )
        return config.pretrained, {}
    tag_cfg = open_clip.get_pretrained_cfg(config.arch, config.pretrained)
    if not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(config.arch)
        raise ConfigError(
            f"invalid configuration at model.{name}.pretrained: {config.pretrained!r} is not a "
            f"pretrained tag of {config.arch} nor an existing file; valid tags: "
            f"{', '.join(tags) or 'none'}"
        )
    cached = _cached_checkpoint(tag_cfg)
    if cached:
        return cached, tag_cfg
    if not _network_reachable():
        raise MissingWeightsError(
            _missing_weights_message(name, config, "they cannot be downloaded (no network)")
        )
    try:
        downloaded = open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir())
    except Exception as error:
        raise MissingWeightsError(
            _missing_weights_message(name, config, f"the download failed ({error})")
        ) from None
    if not downloaded:
        raise MissingWeightsError(
            _missing_weights_message(name, config, "the tag names no download source")
        )
    return downloaded, tag_cfg


#: Models kept loaded by this process (a warm worker), with the RNG state right after loading.
_KEPT: dict[tuple[str, str, str], tuple[LoadedModel, Any]] | None = None


def keep_loaded_models() -> None:
    """Make :func:`load_model` return the same model for the same name, config and device for
    the rest of this process (what a warm worker does; stage processes load once anyway)."""
    global _KEPT
    if _KEPT is None:
        _KEPT = {}


@contextlib.contextmanager
def skipped_parameter_init() -> Iterator[None]:
    """Turn torch's parameter initialisers into no-ops (for a model whose every parameter a
    strictly loaded checkpoint overwrites right after).

    Random initialisation is most of the time it takes to build a large model; values drawn
    with ``torch.randn`` directly and computed buffers (attention masks) are unaffected.
    """
    import torch

    names = [name for name in dir(torch.nn.init)
             if name.endswith("_") and not name.startswith("_")
             and callable(getattr(torch.nn.init, name))]
    saved = {name: getattr(torch.nn.init, name) for name in names}

    def keep(tensor: Any, *_args: Any, **_kwargs: Any) -> Any:
        return tensor

    try:
        for name in names:
            setattr(torch.nn.init, name, keep)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def load_model(name: str, config: ModelConfig, device: str = "auto") -> LoadedModel:
    """Create the model named ``name`` from its config, on ``device``, in eval mode.

    In a warm worker (:func:`keep_loaded_models`) the second call returns the first call's
    model and restores the torch RNG state it left, so the process continues exactly as a
    fresh stage process would after loading.
    """
    import torch

    if _KEPT is None:
        return _load_model(name, config, device)
    key = (name, config.model_dump_json(), device)
    if key in _KEPT:
        loaded, rng_state = _KEPT[key]
        torch.set_rng_state(rng_state)
        return loaded
    loaded = _load_model(name, config, device)
    _KEPT[key] = (loaded, torch.get_rng_state())
    return loaded


def _load_model(name: str, config: ModelConfig, device: str) -> LoadedModel:
    import open_clip
    import torch

    checkpoint, tag_cfg = resolve_checkpoint(name, config)
    model_name = resolve_model_name(name, config)
    quick_gelu = (
        config.force_quick_gelu
        if config.force_quick_gelu is not None
        else bool(tag_cfg.get("quick_gelu", False))
    )
    preprocess_kwargs = {
        key: tag_cfg[source]
        for key, source in (("image_mean", "mean"), ("image_std", "std"),
                            ("image_interpolation", "interpolation"),
                            ("image_resize_mode", "resize_mode"))
        if source in tag_cfg
    }
    target_device = resolve_device(device)
    if config.is_random:
        torch.manual_seed(int(config.random_init_seed or 0))
    # open_clip loads a checkpoint with strict=True: every parameter is overwritten, so the
    # random initialisation before it is skipped (the model builds several times faster).
    building = skipped_parameter_init() if checkpoint else contextlib.nullcontext()
    with building:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=checkpoint,
            precision=config.precision,
            device=target_device,
            force_quick_gelu=quick_gelu,
            weights_only=True,
            **preprocess_kwargs,
        )
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    embed_dim = int(open_clip.get_model_config(model_name)["embed_dim"])
    if config.is_random:
        weights = f"{RANDOM_WEIGHTS_LABEL}, seed {config.random_init_seed}"
    elif config.names_its_weights:
        weights = f"{config.arch} (from {model_name.removeprefix('local-dir:')})"
    else:
        weights = f"pretrained {config.pretrained}"
    provenance = {
        "model": name,
        "arch": config.arch,
        "pretrained": config.pretrained,
        "weights": weights,
        "random_weights": config.is_random,
        "precision": config.precision,
        "quick_gelu": quick_gelu,
        "features": config.features,
        **({"jpeg_draft": True} if config.jpeg_draft else {}),
    }
    return LoadedModel(
        name=name, config=config, model=model, preprocess=preprocess, tokenizer=tokenizer,
        device=target_device, embed_dim=embed_dim, weights=weights, provenance=provenance,
    )
