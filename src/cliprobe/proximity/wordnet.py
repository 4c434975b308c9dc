"""WordNet similarity of a written word and an object, through the ``wn`` package.

The lexicon file (WN-LMF XML, e.g. the Open English WordNet 2024 release) is fetched like a
dataset: downloaded once into the cliprobe cache and checked (a pinned sha256, or the sha256
recorded at the first download), or taken from ``local_file``. ``wn`` then loads it into its
own database, kept in the cliprobe cache (never beside ``local_file``, which may be read-only or
inside a repository) under the file's sha256, so a changed file never meets a stale database.

A word is looked up as a noun (underscores read as spaces); with ``senses: max`` the pair's
similarity is the largest over all noun-sense pairs (the usual word-level reading), with
``first`` the first senses' (WordNet orders senses by frequency). Words WordNet does not know
(``ipod`` in most editions) get NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliprobe.datasets.download import DownloadError, cache_root, download, sha256_file
from cliprobe.errors import CliprobeError

MEASURES = ("wup", "path")


class WordnetUnavailable(CliprobeError):
    """The lexicon file is neither cached nor downloadable (one sentence, with the fix)."""


@dataclass(frozen=True)
class Lexicon:
    """A loaded lexicon: ``wn.Wordnet`` plus what it is (for provenance)."""

    wordnet: Any
    lexicon: str
    sha256: str
    checksum: str  # "pinned" or "recorded at first download"
    senses: str

    def provenance(self) -> dict[str, str]:
        return {"lexicon": self.lexicon, "sha256": self.sha256, "checksum": self.checksum,
                "senses": self.senses, "package": "wn"}


def lexicon_file(config: Any) -> tuple[Path, str, bool]:
    """(file, sha256, pinned) of the configured lexicon: ``local_file``, or downloaded."""
    if config.local_file:
        path = Path(config.local_file).expanduser()
        if not path.is_file():
            raise WordnetUnavailable(
                f"WordNet file {path} does not exist; fix proximity.wordnet.local_file")
        digest = sha256_file(path)
        if config.sha256 and digest != config.sha256.lower():
            raise WordnetUnavailable(
                f"WordNet file {path} has sha256 {digest[:12]}..., not the pinned "
                f"{config.sha256[:12]}...; fix proximity.wordnet.sha256 or the file")
        return path, digest, bool(config.sha256)
    folder = cache_root(config.cache_dir) / "wordnet"
    destination = folder / config.url.rstrip("/").rsplit("/", 1)[-1]
    try:
        verified = download(config.url, destination, sha256=config.sha256,
                            timeout=config.timeout, retries=config.retries)
    except DownloadError as error:
        raise WordnetUnavailable(
            f"WordNet lexicon {config.lexicon} is not in {folder} and cannot be downloaded "
            f"from {config.url} ({error.reason}): connect once and rerun `dvc repro -f words`, "
            "or set proximity.wordnet.local_file to a copy of that file, or "
            "proximity.wordnet.lexicon=null to skip the WordNet measure") from None
    return verified.path, verified.sha256, verified.pinned


def open_lexicon(config: Any) -> Lexicon:
    """Load the configured lexicon with ``wn`` (added to its database once per file)."""
    import wn

    path, digest, pinned = lexicon_file(config)
    data = cache_root(config.cache_dir) / "wordnet" / f".wn-{digest[:16]}"
    data.mkdir(parents=True, exist_ok=True)
    wn.config.data_directory = data
    wanted = str(config.lexicon)
    if not any(f"{lex.id}:{lex.version}" == wanted for lex in wn.lexicons()):
        wn.add(path, progress_handler=None)
    present = [f"{lex.id}:{lex.version}" for lex in wn.lexicons()]
    if wanted not in present:
        raise WordnetUnavailable(
            f"WordNet file {path} holds {', '.join(present) or 'no lexicon'}, not {wanted}; fix "
            "proximity.wordnet.lexicon (id:version) or the file")
    return Lexicon(wn.Wordnet(wanted), wanted, digest,
                   "pinned" if pinned else "recorded at first download", config.senses)


def _noun_synsets(lexicon: Lexicon, word: str) -> list[Any]:
    form = word.replace("_", " ").strip()
    found = lexicon.wordnet.synsets(form, pos="n")
    return found or lexicon.wordnet.synsets(form.lower(), pos="n")


def similarity(lexicon: Lexicon, first: str, second: str, measure: str) -> float:
    """Wu-Palmer (``wup``) or path similarity of two words' noun senses; NaN if unknown."""
    import wn
    import wn.similarity

    function = {"wup": wn.similarity.wup, "path": wn.similarity.path}[measure]
    senses_a, senses_b = _noun_synsets(lexicon, first), _noun_synsets(lexicon, second)
    if not senses_a or not senses_b:
        return float("nan")
    if lexicon.senses == "first":
        senses_a, senses_b = senses_a[:1], senses_b[:1]
    best = float("nan")
    for a in senses_a:
        for b in senses_b:
            try:
                value = float(function(a, b))
            except wn.Error:  # no path between the two (different hierarchies)
                continue
            if math.isnan(best) or value > best:
                best = value
    return best
