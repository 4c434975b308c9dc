"""The manipulation registry: name -> (function, parameter schema).

A manipulation is a pure function ``(image, params, rng) -> image`` on 8-bit RGB PIL images.
Adding one means writing the function here or in a sibling module, decorating it with
:func:`register`, and adding ``conf/manipulation/<name>.yaml``.

Two optional extensions, for manipulations that depend on the image's label (a typographic
attack writes a class name other than the true one):

- ``register(..., needs_context=True)``: the function is called as
  ``fn(image, params, rng, context)`` with an :class:`ImageContext`.
- the function may return :class:`Manipulated` (image + per-image ``info``) instead of an
  image; ``info`` (JSON-serialisable, e.g. ``{"word": "dog", "word_label": "dog"}``) is stored
  with the image's embedding so the scores can use it.

A manipulation that cannot apply to a particular image (too small for a corruption, no room
for the text) says so by raising :class:`ManipulationNotApplicable`: the image is left out of
the cell and counted as ``n_not_applicable``. Any other exception is a bug and fails the stage,
naming the image and the manipulation: it never becomes a silently smaller ``n_images``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

P = TypeVar("P", bound=BaseModel)

ManipulationFn = Callable[..., "Image.Image | Manipulated"]


class ManipulationNotApplicable(Exception):
    """This manipulation cannot apply to this image; the message says why.

    The image is left out of the cell, listed with the reason and counted separately from
    unreadable images (``n_not_applicable`` in the cell's metrics).
    """


@dataclass(frozen=True)
class ImageContext:
    """What a context-aware manipulation may know about the image besides its pixels.

    ``class_names``: the dataset's classes, or for a caption dataset (images without a class,
    ``label == ""``) its vocabulary; ``excluded_words``: words that describe this image (its
    captions use them), which a typographic attack must not write.
    """

    image_id: str
    label: str
    class_names: tuple[str, ...]
    excluded_words: tuple[str, ...] = ()
    #: the dataset's raw folder: files beside the image (the released ImageNet-C images) are
    #: resolved under it
    image_root: str = ""


@dataclass(frozen=True)
class Manipulated:
    """A manipulated image plus per-image facts recorded next to its embedding."""

    image: Image.Image
    info: dict[str, Any] = field(default_factory=dict)


class NoParams(BaseModel):
    """Parameter schema of a manipulation that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Manipulation(Generic[P]):
    """A registered manipulation."""

    name: str
    apply: Callable[..., Image.Image | Manipulated]
    params_model: type[P]
    description: str
    #: True when the function reads numpy's global RNG (seeded per image by the caller).
    uses_global_rng: bool = False
    #: True when the function takes a fourth argument, the :class:`ImageContext`.
    needs_context: bool = False

    def __call__(
        self, image: Image.Image, params: P, rng: np.random.Generator, context: ImageContext
    ) -> Manipulated:
        """Apply to one image, always returning :class:`Manipulated`."""
        result = (self.apply(image, params, rng, context) if self.needs_context
                  else self.apply(image, params, rng))
        return result if isinstance(result, Manipulated) else Manipulated(result)


_REGISTRY: dict[str, Manipulation[Any]] = {}


def register(
    name: str,
    params_model: type[BaseModel] = NoParams,
    *,
    uses_global_rng: bool = False,
    needs_context: bool = False,
) -> Callable[[ManipulationFn], ManipulationFn]:
    """Decorator adding a function to the registry under ``name``."""

    def decorate(function: ManipulationFn) -> ManipulationFn:
        if name in _REGISTRY:
            raise ValueError(f"manipulation {name!r} registered twice")
        doc = (function.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Manipulation(
            name=name,
            apply=function,
            params_model=params_model,
            description=doc[0] if doc else "",
            uses_global_rng=uses_global_rng,
            needs_context=needs_context,
        )
        return function

    return decorate


def get(name: str) -> Manipulation[Any]:
    """The manipulation called ``name``; ``KeyError`` lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown manipulation function {name!r}; valid: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    """All registered manipulation names, sorted."""
    return sorted(_REGISTRY)
