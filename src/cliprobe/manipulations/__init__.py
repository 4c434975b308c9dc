"""Image manipulations. Importing this package fills the registry.

The registry lives in :mod:`cliprobe.manipulations.registry`; the functions in one module per
family (:mod:`~cliprobe.manipulations.basic`,
:mod:`~cliprobe.manipulations.corruptions`, :mod:`~cliprobe.manipulations.typographic`,
:mod:`~cliprobe.manipulations.occlusion`); :mod:`~cliprobe.manipulations.composition` chains
registered ones (``sequence``).
"""

from cliprobe.manipulations import (  # noqa: F401  (importing registers the functions)
    basic,
    composition,
    corruptions,
    occlusion,
    typographic,
)
from cliprobe.manipulations.registry import (
    ImageContext,
    Manipulated,
    Manipulation,
    ManipulationNotApplicable,
    get,
    names,
    register,
)

__all__ = ["ImageContext", "Manipulated", "Manipulation", "ManipulationNotApplicable", "get",
           "names", "register"]
