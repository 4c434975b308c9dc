"""Fixtures of the dataset tests: no backoff, never offline, a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dataset_helpers import Server, handler_for

from cliprobe.datasets import download


@pytest.fixture(autouse=True)
def _fast_and_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backoff sleeps; never offline unless a test says so."""
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.0)
    monkeypatch.delenv("CLIPROBE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("CLIPROBE_DATA_CACHE", raising=False)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Server]:
    """A threading HTTP server on 127.0.0.1 serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    state = Server(root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
