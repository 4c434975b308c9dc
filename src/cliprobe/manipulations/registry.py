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

And one for speed: a manipulation that starts with a deterministic step shared by many cells
(ImageNet-C's Resize 256 + CenterCrop 224) declares it with ``register(..., construction=...,
after_construction=...)``: ``construction(params)`` names the step (a :class:`Construction`,
or None for params that have none) and ``after_construction`` is the rest of the function. The
embed runner then computes the constructed images once per dataset and reuses them in every
cell (:mod:`cliprobe.embedding.constructed`); ``fn`` must equal ``after_construction`` applied
to the constructed image, byte for byte.
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
class Construction:
    """A deterministic first step of a manipulation, the same for every cell that uses it."""

    #: names the step in cache keys (change it when the step's pixels change)
    name: str
    #: RGB image in, RGB image out
    apply: Callable[[Image.Image], Image.Image]
    #: (width, height) of every output, or None when it depends on the input
    size: tuple[int, int] | None = None


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
    #: params -> the deterministic first step (see the module doc), or None
    construction: Callable[[P], Construction | None] | None = None
    #: the function without that first step (same arguments as ``apply``)
    after_construction: Callable[..., Image.Image | Manipulated] | None = None
    #: imports / compiles what the function needs, once per process: called before decode
    #: workers fork, so a warm worker pays it once, not once per cell
    warm_up: Callable[[], None] | None = None

    def construction_for(self, params: P) -> Construction | None:
        """The first step these params start with, when declared."""
        return self.construction(params) if self.construction is not None else None

    def __call__(
        self, image: Image.Image, params: P, rng: np.random.Generator, context: ImageContext,
        constructed: bool = False,
    ) -> Manipulated:
        """Apply to one image, always returning :class:`Manipulated`.

        ``constructed``: ``image`` already went through :meth:`construction_for` (the runner's
        decode-once path), so only the rest of the function runs.
        """
        function = self.apply
        if constructed:
            if self.construction_for(params) is None or self.after_construction is None:
                raise ValueError(f"manipulation {self.name!r} has no construction step")
            function = self.after_construction
        result = (function(image, params, rng, context) if self.needs_context
                  else function(image, params, rng))
        return result if isinstance(result, Manipulated) else Manipulated(result)


_REGISTRY: dict[str, Manipulation[Any]] = {}


def register(
    name: str,
    params_model: type[BaseModel] = NoParams,
    *,
    uses_global_rng: bool = False,
    needs_context: bool = False,
    construction: Callable[[Any], Construction | None] | None = None,
    after_construction: ManipulationFn | None = None,
    warm_up: Callable[[], None] | None = None,
) -> Callable[[ManipulationFn], ManipulationFn]:
    """Decorator adding a function to the registry under ``name``."""
    if (construction is None) != (after_construction is None):
        raise ValueError("construction and after_construction go together")

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
            construction=construction,
            after_construction=after_construction,
            warm_up=warm_up,
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
