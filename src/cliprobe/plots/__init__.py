"""Figures, drawn from the aggregate tables (never from raw embeddings)."""
