"""The knn-service client against a real local HTTP server speaking the clip-retrieval API."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliprobe.errors import CliprobeError
from cliprobe.retrieval.remote_knn import (
    KnnClient,
    KnnServiceConfig,
    KnnServiceError,
    KnnServiceUnavailableError,
    cache_key,
    download_images,
    request_body,
)

# The fields clip_retrieval.clip_client.ClipClient posts.
CLIP_CLIENT_FIELDS = {
    "text", "image", "image_url", "embedding_input", "deduplicate", "use_safety_model",
    "use_violence_detector", "indice_name", "use_mclip", "aesthetic_score", "aesthetic_weight",
    "modality", "num_images", "num_result_ids",
}
N_ITEMS, DIM = 6, 8


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeKnnService:
    """A clip-retrieval-like back end: POST /knn-service, GET /images/<i>.png and bad URLs."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((N_ITEMS, DIM))
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.images = {f"/images/{i}.png": _png(i) for i in range(N_ITEMS)}
        self.knn_requests = 0
        self.image_requests = 0
        self.fail_next = 0
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.image_delay = 0.0
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with service.lock:
                    service.knn_requests += 1
                    service.bodies.append(body)
                    fail = service.fail_next > 0
                    service.fail_next -= int(fail)
                if body["indice_name"] == "hangs":
                    time.sleep(1.0)
                if self.path != "/knn-service":
                    self._send(404, b'{"error": "not found"}')
                elif fail:
                    self._send(500, b"internal error")
                elif body["indice_name"] != "test_index":
                    self._send(400, b'{"error": "unknown indice"}')
                else:
                    query = np.asarray(body["embedding_input"])
                    sims = service.vectors @ query
                    order = np.argsort(-sims)[: body["num_images"]]
                    base = f"http://127.0.0.1:{self.server.server_address[1]}"
                    results = [{"id": int(i), "similarity": float(sims[i]),
                                "url": f"{base}/images/{i}.png", "caption": f"item {i}"}
                               for i in order]
                    self._send(200, json.dumps(results).encode())

            def do_GET(self) -> None:
                with service.lock:
                    service.image_requests += 1
                    service.in_flight += 1
                    service.max_in_flight = max(service.max_in_flight, service.in_flight)
                try:
                    time.sleep(service.image_delay)
                    if self.path in service.images:
                        self._send(200, service.images[self.path], "image/png")
                    elif self.path == "/broken.png":
                        self._send(200, b"this is not an image", "image/png")
                    elif self.path == "/slow.png":
                        time.sleep(1.0)
                        self._send(200, service.images["/images/0.png"], "image/png")
                    else:
                        self._send(404, b"no such image", "text/plain")
                finally:
                    with service.lock:
                        service.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.02})

    def __enter__(self) -> FakeKnnService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[FakeKnnService]:
    with FakeKnnService() as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(url: str, tmp_path: Path, **overrides: object) -> KnnServiceConfig:
    values = {"url": url, "indice_name": "test_index", "num_images": 3, "timeout_s": 2.0,
              "retries": 3, "backoff_s": 0.01, "cache_dir": str(tmp_path / "knn")}
    values.update(overrides)
    return KnnServiceConfig(**values)


def test_query_sends_clip_client_body_and_returns_results(service: FakeKnnService,
                                                          tmp_path: Path) -> None:
    client = KnnClient(_config(service.url, tmp_path))
    query = service.vectors[2].astype(np.float32)
    results = client.query(query)
    assert results[0]["id"] == 2 and len(results) == 3
    assert results[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert set(service.bodies[0]) == CLIP_CLIENT_FIELDS
    body = service.bodies[0]
    assert body["num_result_ids"] == body["num_images"] == 3 and body["modality"] == "image"
    assert body["aesthetic_score"] == 9 and body["aesthetic_weight"] == 0.5


def test_rerun_hits_the_disk_cache_and_sends_nothing(service: FakeKnnService,
                                                     tmp_path: Path) -> None:
    config = _config(service.url + "/knn-service", tmp_path)  # the full endpoint also works
    query = service.vectors[:2].astype(np.float32)
    first = KnnClient(config).query_many(query)
    assert service.knn_requests == 2
    rerun = KnnClient(config)  # a fresh process would start from the same cache folder
    assert rerun.query_many(query) == first
    assert service.knn_requests == 2 and rerun.requests_sent == 0 and rerun.cache_hits == 2
    body = request_body(config, query[0])
    expected = Path(config.cache_dir) / f"{cache_key(service.url + '/knn-service', body)}.json"
    assert expected.is_file()
    # a different request (num_images) is a different cache entry
    KnnClient(config.model_copy(update={"num_images": 2})).query(query[0])
    assert service.knn_requests == 3


def test_another_server_with_the_same_index_name_is_asked_anew(tmp_path: Path) -> None:
    """The cache is keyed by the service too: pointing url at another server holding other
    data under the same index name must not return the first server's answers."""
    with FakeKnnService(seed=0) as first, FakeKnnService(seed=1) as second:
        query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
        from_first = KnnClient(_config(first.url, tmp_path)).query(query)
        client = KnnClient(_config(second.url, tmp_path))  # same cache folder, same body
        from_second = client.query(query)
        assert second.knn_requests == 1 and client.cache_hits == 0
        expected = second.vectors @ query
        assert [r["similarity"] for r in from_second] == pytest.approx(
            sorted(expected, reverse=True)[:3])
        assert from_second != from_first
        # and each server's own answers are still served from the cache
        assert KnnClient(_config(first.url, tmp_path)).query(query) == from_first
        assert first.knn_requests == 1


def test_service_down_is_one_clear_sentence_quickly(tmp_path: Path) -> None:
    client = KnnClient(_config(f"http://127.0.0.1:{_closed_port()}", tmp_path, retries=2))
    start = time.monotonic()
    with pytest.raises(KnnServiceUnavailableError) as raised:
        client.query(np.ones(DIM, dtype=np.float32))
    assert time.monotonic() - start < 2.0
    message = str(raised.value)
    assert isinstance(raised.value, CliprobeError)
    assert "\n" not in message and "unavailable" in message and "3 attempt(s)" in message
    assert "refused" in message
    assert client.requests_sent == 3
    assert not any((tmp_path / "knn").glob("*.json"))  # failures are never cached


def test_a_hanging_service_times_out(service: FakeKnnService, tmp_path: Path) -> None:
    client = KnnClient(_config(service.url, tmp_path, indice_name="hangs", timeout_s=0.2,
                               retries=1))
    start = time.monotonic()
    with pytest.raises(KnnServiceUnavailableError, match="timed out after 2 attempt"):
        client.query(service.vectors[0])
    assert time.monotonic() - start < 1.5


def test_retries_on_500_with_exponential_backoff(service: FakeKnnService,
                                                 tmp_path: Path) -> None:
    service.fail_next = 2
    waits: list[float] = []
    client = KnnClient(_config(service.url, tmp_path, backoff_s=0.5), sleep=waits.append)
    results = client.query(service.vectors[0])
    assert results[0]["id"] == 0
    assert service.knn_requests == 3 and client.requests_sent == 3
    assert waits == [0.5, 1.0]


def test_persistent_500_becomes_unavailable(service: FakeKnnService, tmp_path: Path) -> None:
    service.fail_next = 100
    client = KnnClient(_config(service.url, tmp_path, retries=1))
    with pytest.raises(KnnServiceUnavailableError, match="HTTP 500"):
        client.query(service.vectors[0])
    assert service.knn_requests == 2


def test_client_errors_are_not_retried(service: FakeKnnService, tmp_path: Path) -> None:
    client = KnnClient(_config(service.url, tmp_path, indice_name="no_such_index"))
    with pytest.raises(KnnServiceError, match="HTTP 400") as raised:
        client.query(service.vectors[0])
    assert not isinstance(raised.value, KnnServiceUnavailableError)
    assert service.knn_requests == 1


def test_download_counts_failures_without_raising(service: FakeKnnService,
                                                  tmp_path: Path) -> None:
    results = KnnClient(_config(service.url, tmp_path)).query(service.vectors[1])
    good = [r["url"] for r in results]
    urls = [*good, f"{service.url}/broken.png", f"{service.url}/missing.png",
            f"http://127.0.0.1:{_closed_port()}/x.png", f"{service.url}/slow.png",
            "ftp://example.invalid/a.png", good[0]]
    report = download_images(urls, tmp_path / "images", max_concurrency=4, timeout=0.3)
    assert [r.url for r in report.results] == urls
    assert report.n_ok == 4 and report.n_failed == 5
    reasons = [r.reason for r in report.results[3:8]]
    assert reasons[0].startswith("not a readable image")
    assert reasons[1].startswith("HTTP 404")
    assert "refused" in reasons[2]
    assert "timed out" in reasons[3]
    assert reasons[4] == "not an http(s) URL"
    for result in report.results[:3]:
        with Image.open(result.path) as image:
            assert image.size == (12, 12)
    before = service.image_requests
    again = download_images(good, tmp_path / "images")
    assert again.n_ok == 3 and all(r.cached for r in again.results)
    assert service.image_requests == before


def test_download_concurrency_is_bounded(service: FakeKnnService, tmp_path: Path) -> None:
    service.image_delay = 0.05
    urls = [f"{service.url}/images/{i}.png" for i in range(N_ITEMS)]
    report = download_images(urls, tmp_path / "images", max_concurrency=2, timeout=2.0)
    assert report.n_ok == N_ITEMS
    assert 1 <= service.max_in_flight <= 2
