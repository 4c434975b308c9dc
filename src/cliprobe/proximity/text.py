"""Word / object proximity in the model's text space."""

from __future__ import annotations

import numpy as np

from cliprobe.io.classifier import Classifier


def text_cosine(classifier: Classifier, first: str, second: str) -> float:
    """Cosine of two classes' zero-shot embeddings (columns of W, unit length); NaN when either
    is not a class of the classifier. With several prompt templates each column is the
    normalised mean of its prompts' embeddings (SPEC §2), so this is the geometry the
    zero-shot decision itself uses."""
    index = {name: i for i, name in enumerate(classifier.class_names)}
    if first not in index or second not in index:
        return float("nan")
    weights = classifier.weights
    return float(np.dot(weights[:, index[first]], weights[:, index[second]]))
