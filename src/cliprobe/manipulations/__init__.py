"""Image manipulations. Importing this package fills the registry.

The registry lives in :mod:`cliprobe.manipulations.registry`; the functions in one module per
family (:mod:`~cliprobe.manipulations.basic`, ...).
"""

from cliprobe.manipulations import basic  # noqa: F401  (registers the functions)
from cliprobe.manipulations.registry import Manipulation, get, names, register

__all__ = ["Manipulation", "get", "names", "register"]
