"""The manipulation registry: name -> (function, parameter schema).

A manipulation is a pure function ``(image, params, rng) -> image`` on 8-bit RGB PIL images.
Adding one means writing the function here or in a sibling module, decorating it with
:func:`register`, and adding ``conf/manipulation/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

P = TypeVar("P", bound=BaseModel)

ManipulationFn = Callable[[Image.Image, Any, np.random.Generator], Image.Image]


class NoParams(BaseModel):
    """Parameter schema of a manipulation that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Manipulation(Generic[P]):
    """A registered manipulation."""

    name: str
    apply: Callable[[Image.Image, P, np.random.Generator], Image.Image]
    params_model: type[P]
    description: str
    #: True when the function reads numpy's global RNG (seeded per image by the caller).
    uses_global_rng: bool = False


_REGISTRY: dict[str, Manipulation[Any]] = {}


def register(
    name: str, params_model: type[BaseModel] = NoParams, *, uses_global_rng: bool = False
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
