"""CLIP models: the single front door :func:`load_model` over open_clip."""

from cliprobe.models.loader import LoadedModel, load_model, resolve_device

__all__ = ["LoadedModel", "load_model", "resolve_device"]
