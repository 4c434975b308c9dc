"""Seed 001's score against a knn-service: a real local HTTP server speaking the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliprobe.images import load_rgb
from cliprobe.retrieval.remote_knn import KnnClient
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.remote import RemoteRetrievalConfig, remote_scores


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def service() -> Iterator[tuple[str, dict[str, int]]]:
    counts = {"post": 0, "get": 0}
    images = {"/img/red.png": _png((255, 0, 0)), "/img/blue.png": _png((0, 0, 255))}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            counts["post"] += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert body["modality"] == "image" and len(body["embedding_input"]) == 2
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            results = [{"id": i, "url": f"{base}{path}", "similarity": 0.9 - i / 10}
                       for i, path in enumerate(["/img/red.png", "/img/blue.png",
                                                 "/img/missing.png"])]
            payload = json.dumps(results).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            counts["get"] += 1
            data = images.get(self.path)
            self.send_response(200 if data else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", counts
    server.shutdown()


def _embed_by_colour(paths: list[Path]) -> tuple[np.ndarray, list[int]]:
    """Embeds an image by its colour: red -> (1, 0), blue -> (0, 1) (a real image function)."""
    vectors = []
    for path in paths:
        pixel = np.asarray(load_rgb(path))[0, 0].astype(float)
        vectors.append(np.array([pixel[0], pixel[2]]) / np.linalg.norm([pixel[0], pixel[2]]))
    return np.asarray(vectors, dtype=np.float32), list(range(len(paths)))


def test_remote_seed001_score_with_cache_and_failures(
    service: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    url, counts = service
    config = RemoteRetrievalConfig(enabled=True, url=url, cache_dir=str(tmp_path / "knn"),
                                   image_cache=str(tmp_path / "images"), retries=0)
    queries = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    clean = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    labels = np.array(["red", "red", "blue"])
    estimate = Estimator(0, "m/d/x", 100, 0.95)
    metrics, facts = remote_scores(queries, clean, labels, config, 0.8, _embed_by_colour,
                                   estimate, KnnClient(config))
    # each query: red and blue downloaded, missing.png failed -> 1 of 2 results close
    assert metrics["seed001_accuracy_remote"]["value"] == pytest.approx(0.5)
    assert facts["requests_sent"] == 3 and facts["download_failures"] >= 1
    assert facts["queries_scored"] == 3 and facts["embedded"] == 6
    posts, gets = counts["post"], counts["get"]
    again, facts_again = remote_scores(queries, clean, labels, config, 0.8, _embed_by_colour,
                                       estimate, KnnClient(config))
    assert again == metrics
    assert counts["post"] == posts and facts_again["cache_hits"] == 3
    assert counts["get"] - gets == 1  # only the failed image is tried again
