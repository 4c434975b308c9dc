"""Metric definitions: small pure functions over arrays. One module per task."""
