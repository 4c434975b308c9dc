"""How close the written word is to the object (seed 000's apple / iPod question).

- :mod:`~cliprobe.proximity.pairs`: per (object, written word) pair of a cell, the attack's
  outcome (p(word), attack success, p(object));
- :mod:`~cliprobe.proximity.text`: the cosine of the two class embeddings in the model's
  text space (the zero-shot classifier's own columns);
- :mod:`~cliprobe.proximity.wordnet`: WordNet Wu-Palmer and path similarity through ``wn``,
  over the Open English WordNet file downloaded and checked like a dataset;
- :mod:`~cliprobe.proximity.correlation`: Spearman's rho with a bootstrap interval.
"""
