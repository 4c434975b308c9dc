"""File output helpers: atomic writes and the embedding Parquet layout."""
