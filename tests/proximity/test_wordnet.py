"""WordNet similarity on a tiny hand-made WN-LMF lexicon (offline), and the offline message."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from cliprobe.config.schema import WordnetConfig
from cliprobe.proximity.wordnet import WordnetUnavailable, open_lexicon, similarity

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wordnet-mini.xml"


@pytest.fixture
def lexicon_file(tmp_path: Path) -> Path:
    path = tmp_path / "wordnet-mini.xml.gz"  # compressed, like the real release
    with FIXTURE.open("rb") as source, gzip.open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    return path


def test_the_hand_checked_pair(lexicon_file: Path) -> None:
    lexicon = open_lexicon(WordnetConfig(lexicon="cliprobe-test:1",
                                         local_file=str(lexicon_file)))
    # the fixture's header comment works these out by hand
    assert similarity(lexicon, "apple", "ipod", "wup") == pytest.approx(0.4)
    assert similarity(lexicon, "apple", "iPod", "path") == pytest.approx(1 / 7)
    assert similarity(lexicon, "apple", "cat", "wup") == pytest.approx(4 / 11)
    assert similarity(lexicon, "coffee_mug", "ipod", "wup") == pytest.approx(6 / 9)
    assert similarity(lexicon, "apple", "apple", "wup") == pytest.approx(1.0)
    assert similarity(lexicon, "apple", "laptop", "wup") != similarity(
        lexicon, "apple", "laptop", "wup")  # NaN: not in the lexicon
    assert lexicon.provenance()["lexicon"] == "cliprobe-test:1"
    assert lexicon.provenance()["checksum"] == "recorded at first download"
    # wn's database lives in the cache, never beside the user's (maybe read-only) file
    assert list(lexicon_file.parent.iterdir()) == [lexicon_file]


def test_first_sense_only(tmp_path: Path) -> None:
    # put the company sense first: the first-sense reading then meets iPod only at the root
    text = FIXTURE.read_text().replace(
        '<Sense id="cliprobe-test-apple-n-fruit" synset="cliprobe-test-s-apple"/>\n'
        '      <Sense id="cliprobe-test-apple-n-company" synset="cliprobe-test-s-apple-inc"/>',
        '<Sense id="cliprobe-test-apple-n-company" synset="cliprobe-test-s-apple-inc"/>\n'
        '      <Sense id="cliprobe-test-apple-n-fruit" synset="cliprobe-test-s-apple"/>')
    path = tmp_path / "swapped.xml"
    path.write_text(text)
    first = open_lexicon(WordnetConfig(lexicon="cliprobe-test:1", local_file=str(path),
                                       senses="first"))
    assert similarity(first, "apple", "ipod", "wup") == pytest.approx(2 / 9)
    best = open_lexicon(WordnetConfig(lexicon="cliprobe-test:1", local_file=str(path)))
    assert similarity(best, "apple", "ipod", "wup") == pytest.approx(0.4)


def test_a_pinned_checksum_and_the_lexicon_id_are_checked(lexicon_file: Path) -> None:
    with pytest.raises(WordnetUnavailable, match=r"proximity\.wordnet\.sha256"):
        open_lexicon(WordnetConfig(lexicon="cliprobe-test:1", local_file=str(lexicon_file),
                                   sha256="0" * 64))
    with pytest.raises(WordnetUnavailable, match=r"holds cliprobe-test:1, not oewn:2024"):
        open_lexicon(WordnetConfig(local_file=str(lexicon_file)))


def test_offline_is_one_sentence_with_the_ways_out(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    with pytest.raises(WordnetUnavailable) as error:
        open_lexicon(WordnetConfig(cache_dir=str(tmp_path / "cache")))
    message = str(error.value)
    assert message.startswith("WordNet lexicon oewn:2024 is not in")
    assert "\n" not in message and message.count(". ") == 0
    for fix in ("dvc repro -f words", "proximity.wordnet.local_file",
                "proximity.wordnet.lexicon=null"):
        assert fix in message


def test_a_downloaded_file_is_cached_and_loaded(lexicon_file: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPROBE_OFFLINE", raising=False)
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(lexicon_file, www / "wn.xml.gz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = WordnetConfig(lexicon="cliprobe-test:1",
                               url=f"http://127.0.0.1:{server.server_address[1]}/wn.xml.gz",
                               cache_dir=str(tmp_path / "cache"), timeout=5)
        lexicon = open_lexicon(config)
    finally:
        server.shutdown()
        server.server_close()
    assert similarity(lexicon, "apple", "ipod", "wup") == pytest.approx(0.4)
    assert (tmp_path / "cache" / "wordnet" / "wn.xml.gz").is_file()
