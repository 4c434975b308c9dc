"""Datasets: sources that materialise images, and the uniform manifest every later stage reads."""
