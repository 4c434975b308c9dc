"""Nearest-neighbour search of query embeddings in a gallery."""

from cliprobe.retrieval.exact import top_k

__all__ = ["top_k"]
