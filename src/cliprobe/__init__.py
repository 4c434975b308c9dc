"""cliprobe: a reproducible, cached benchmark of how easily CLIP models are fooled."""

__version__ = "0.1.0"
