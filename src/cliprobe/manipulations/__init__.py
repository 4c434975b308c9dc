"""Image manipulations. Importing this package fills the registry.

The registry lives in :mod:`cliprobe.manipulations.registry`; the functions in one module per
family (:mod:`~cliprobe.manipulations.basic`,
:mod:`~cliprobe.manipulations.corruptions`, :mod:`~cliprobe.manipulations.typographic`).
"""

from cliprobe.manipulations import basic, corruptions, typographic  # noqa: F401  (registers the functions)
from cliprobe.manipulations.registry import (
    ImageContext,
    Manipulated,
    Manipulation,
    get,
    names,
    register,
)

__all__ = ["ImageContext", "Manipulated", "Manipulation", "get", "names", "register"]
