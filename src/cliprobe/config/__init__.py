"""Configuration: the params schema, loading ``params.yaml`` and composing ``conf/``."""

from cliprobe.config.loading import load_params
from cliprobe.config.schema import Params

__all__ = ["Params", "load_params"]
