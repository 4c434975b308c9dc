"""Embedding computation, one module per step: read -> encode -> write, driven by the runner."""
