"""Stage words: why a word wins, over the grid's cells that have words written on them.

For every cell whose images carry a written word (real typographic photos in their
``original`` cell, ``typographic`` / ``postit`` / sequences with them) and every (object, word)
pair it holds: the attack's outcome, the cosine of the two classes in the model's text space
and their WordNet similarity; then Spearman's rho between each proximity measure and each
outcome over the pairs where the word attacks (not blank, not the object's own name), with a
bootstrap interval. Also gathers the saliency cells' word-box mass summaries into one table.

Outputs:

- ``plots/word_pairs.csv``: model, dataset, manipulation, object, word, condition, n_images,
  p_object, p_word, attack_success, acc1, text_cosine, wordnet_wup, wordnet_path (the data of
  the object x word matrix and of the proximity figure);
- ``metrics/proximity.csv``: model, dataset, manipulation, measure, outcome, rho, ci_low,
  ci_high, p_value, n_pairs, resamples, confidence, source (prompt set, or the WordNet
  lexicon with its checksum, or why it is unavailable);
- ``metrics/saliency.csv``: model, dataset, manipulation, method, view, statistic, value,
  ci_low, ci_high, n, box_fraction (the share of saliency mass inside the word's box).

WordNet offline: the lexicon is fetched like a dataset; when it is neither cached nor
downloadable the WordNet columns are empty, ``source`` says why, and a one-sentence warning
names the fixes (then ``dvc repro -f words`` once it is there).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

import pandas as pd

from cliprobe import paths
from cliprobe.config.stage_params import load_stage_params
from cliprobe.datasets.manifest import read_manifest
from cliprobe.errors import exit_on_user_error
from cliprobe.io.atomic import atomic_path
from cliprobe.io.classifier import read_classifier
from cliprobe.proximity.correlation import spearman_interval
from cliprobe.proximity.pairs import PAIR_COLUMNS, has_words, word_pairs
from cliprobe.proximity.text import text_cosine
from cliprobe.proximity.wordnet import MEASURES, WordnetUnavailable, open_lexicon, similarity
from cliprobe.seeding import derive_seed
from cliprobe.stages._common import parser, setup_logging

log = logging.getLogger("cliprobe.words")

WORD_PAIRS = paths.PLOTS / "word_pairs.csv"
PROXIMITY = paths.METRICS / "proximity.csv"
SALIENCY = paths.METRICS / "saliency.csv"
KEYS = ["model", "dataset", "manipulation"]
PROXIMITY_MEASURES = ("text_cosine", *(f"wordnet_{m}" for m in MEASURES))
OUTCOMES = ("p_word", "attack_success")
PROXIMITY_COLUMNS = [*KEYS, "measure", "outcome", "rho", "ci_low", "ci_high", "p_value",
                     "n_pairs", "resamples", "confidence", "source"]
SALIENCY_COLUMNS = [*KEYS, "method", "view", "statistic", "value", "ci_low", "ci_high", "n",
                    "box_fraction"]


class WordnetMeasures:
    """WordNet similarities, opened on first use and cached per pair."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.lexicon: Any = None
        self.source = "proximity.wordnet.lexicon is null" if config.lexicon is None else ""
        self.cache: dict[tuple[str, str], dict[str, float]] = {}

    def __call__(self, first: str, second: str) -> dict[str, float]:
        if (first, second) not in self.cache:
            if self.lexicon is None and not self.source:
                try:
                    self.lexicon = open_lexicon(self.config)
                    info = self.lexicon.provenance()
                    self.source = (f"wn {info['lexicon']} (sha256 {info['sha256'][:12]}, "
                                   f"{info['checksum']}; senses: {info['senses']})")
                except WordnetUnavailable as error:
                    self.source = f"unavailable: {error}"
                    log.warning("%s", error)
            self.cache[(first, second)] = {
                f"wordnet_{m}": (similarity(self.lexicon, first, second, m)
                                 if self.lexicon is not None else math.nan)
                for m in MEASURES}
        return self.cache[(first, second)]


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def saliency_rows(params: Any) -> list[dict[str, Any]]:
    """The word-box mass summary of every saliency cell of the grid, long format."""
    rows = []
    for model in params.grid.model:
        for dataset in params.grid.dataset:
            for cell in params.saliency.cells:
                file = paths.saliency_dir(model, dataset, cell) / "saliency.json"
                if not file.is_file():
                    continue
                summary = json.loads(file.read_text())["mass_in_word_box"]
                for method, views in summary.items():
                    for view, stats in views.items():
                        for statistic, estimate in stats.items():
                            if not isinstance(estimate, dict):
                                continue
                            rows.append({"model": model, "dataset": dataset,
                                         "manipulation": cell, "method": method, "view": view,
                                         "statistic": statistic, "value": estimate["value"],
                                         "ci_low": estimate["ci_low"],
                                         "ci_high": estimate["ci_high"], "n": estimate["n"],
                                         "box_fraction": stats["box_fraction"]})
    return rows


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parser(__doc__ or "").parse_args(argv)
    params = load_stage_params("words", args.params)
    wordnet = WordnetMeasures(params.proximity.wordnet)
    pair_tables, proximity_rows = [], []
    for model in params.grid.model:
        for dataset in params.grid.dataset:
            manifest_file = paths.manifest_path(dataset)
            classifier_file = paths.classifier_path(model, dataset)
            if not (manifest_file.is_file() and classifier_file.is_file()):
                continue
            manifest, _ = read_manifest(manifest_file)
            classifier = read_classifier(classifier_file)
            for cell in [paths.CLEAN, *params.grid.manipulation]:
                per_image_file = paths.cell_dir(model, dataset, cell) / "per_image.parquet"
                if not per_image_file.is_file():
                    continue
                per_image = pd.read_parquet(per_image_file)
                if not has_words(per_image):
                    continue
                pairs = word_pairs(per_image, manifest)
                pairs["text_cosine"] = [text_cosine(classifier, o, w)
                                        for o, w in zip(pairs["object"], pairs["word"],
                                                        strict=True)]
                attacks = pairs["condition"] == "typographic_attack"
                measured = [wordnet(o, w) if attack else dict.fromkeys(
                                (f"wordnet_{m}" for m in MEASURES), math.nan)
                            for o, w, attack in zip(pairs["object"], pairs["word"], attacks,
                                                    strict=True)]
                for measure in (f"wordnet_{m}" for m in MEASURES):
                    pairs[measure] = [entry[measure] for entry in measured]
                pairs.insert(0, "manipulation", cell)
                pairs.insert(0, "dataset", dataset)
                pairs.insert(0, "model", model)
                pair_tables.append(pairs)
                scored = pairs[attacks & pairs["p_word"].notna()]
                for measure in PROXIMITY_MEASURES:
                    source = (f"zero-shot classifier ({classifier.metadata.get('prompts')})"
                              if measure == "text_cosine" else wordnet.source)
                    for outcome in OUTCOMES:
                        seed = derive_seed(params.seed, model, dataset, cell, measure, outcome)
                        result = spearman_interval(
                            scored[measure].to_numpy(), scored[outcome].to_numpy(),
                            params.stats.bootstrap_resamples, params.stats.confidence,
                            seed % 2**32)
                        proximity_rows.append({"model": model, "dataset": dataset,
                                               "manipulation": cell, "measure": measure,
                                               "outcome": outcome, **result, "source": source})
    columns = [*KEYS, *PAIR_COLUMNS, *PROXIMITY_MEASURES]
    pairs_table = (pd.concat(pair_tables, ignore_index=True) if pair_tables
                   else pd.DataFrame(columns=columns))[columns]
    outputs = {
        WORD_PAIRS: pairs_table,
        PROXIMITY: pd.DataFrame(proximity_rows, columns=PROXIMITY_COLUMNS),
        SALIENCY: pd.DataFrame(saliency_rows(params), columns=SALIENCY_COLUMNS),
    }
    for path, frame in outputs.items():
        with atomic_path(path) as tmp:
            frame.map(_none_if_nan).to_csv(tmp, index=False, float_format="%.6g")
    print(f"words: {len(pairs_table)} (object, word) pairs in {len(pair_tables)} cells, "
          f"{len(outputs[SALIENCY])} saliency values; WordNet: {wordnet.source or 'not needed'}"
          f" -> {WORD_PAIRS}, {PROXIMITY}, {SALIENCY}", file=sys.stderr)


if __name__ == "__main__":
    main()
