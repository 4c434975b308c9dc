"""Figures, drawn from the aggregate tables (never from raw embeddings)."""

#: The second line of every figure title drawn from a random-weight model.
RANDOM_LABEL = "RANDOM WEIGHTS: not a finding"


def with_random_label(text: str, random_weights: bool) -> str:
    """``text``, with the random-weights warning on a second line when it applies."""
    return f"{text}\n{RANDOM_LABEL}" if random_weights else text
