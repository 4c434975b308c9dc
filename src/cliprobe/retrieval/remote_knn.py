"""A client for the clip-retrieval ``knn-service`` JSON API (seed 001 queried LAION-5B with it).

Seed 001 used ``clip_retrieval.clip_client.ClipClient(url="https://knn.laion.ai/knn-service",
indice_name="laion5B-L-14", aesthetic_score=9, aesthetic_weight=0.5, modality=IMAGE,
num_images=10)`` and ``client.query(embedding_input=...)``. :class:`KnnClient` sends the same
request: ``POST {url}/knn-service`` with the JSON body ClipClient builds (``text``, ``image``,
``image_url``, ``embedding_input``, ``deduplicate``, ``use_safety_model``,
``use_violence_detector``, ``indice_name``, ``use_mclip``, ``aesthetic_score``,
``aesthetic_weight``, ``modality``, ``num_images`` and ``num_result_ids`` = ``num_images``), and
gets back a list of ``{"id", "similarity", "url", "caption", ...}`` results.

What it adds:

- a disk cache: one JSON file per request, named by the SHA-256 of the service endpoint and the
  exact request body (everything that determines the answer), so a rerun sends no request at
  all (and works offline), and another server with the same index name is asked anew;
- a timeout per attempt, retries with exponential backoff on connection errors, timeouts,
  HTTP 429 and 5xx, and :class:`KnnServiceUnavailableError` (one sentence) when the service
  stays down; other HTTP errors raise :class:`KnnServiceError` at once;
- :func:`download_images`: fetch result images with bounded concurrency, reporting success or
  the reason of failure per URL (a bad URL is counted, never raised).

Only the standard library is used (``urllib``), no ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cliprobe.errors import CliprobeError
from cliprobe.io.atomic import atomic_path

LOGGER = logging.getLogger(__name__)
USER_AGENT = "cliprobe/0.1 (knn-service client)"


class KnnServiceError(CliprobeError):
    """The kNN service answered, but with an error or something that is not a result list."""


class KnnServiceUnavailableError(KnnServiceError):
    """The kNN service could not be reached (down, refused, timed out) after every retry."""


class KnnServiceConfig(BaseModel):
    """Where and how to query a clip-retrieval ``knn-service`` (defaults: seed 001's client)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="https://knn.laion.ai", description="service base URL; "
                     "'/knn-service' is appended unless the URL already ends with it")
    indice_name: str = "laion5B-L-14"
    modality: Literal["image", "text"] = Field(default="image", description="what to return: "
                                               "the image or the text index")
    num_images: int = Field(default=10, ge=1, description="results per query (N)")
    use_mclip: bool = False
    deduplicate: bool = True
    use_safety_model: bool = True
    use_violence_detector: bool = True
    aesthetic_score: int = 9
    aesthetic_weight: float = 0.5
    timeout_s: float = Field(default=30.0, gt=0, description="per attempt, seconds")
    retries: int = Field(default=3, ge=0, description="extra attempts after the first")
    backoff_s: float = Field(default=1.0, ge=0, description="wait before retry i is "
                             "backoff_s * 2**i seconds")
    cache_dir: str = Field(default="data/cache/knn", description="one JSON file per request")


def service_endpoint(url: str) -> str:
    """``url`` with ``/knn-service`` appended unless already there (ClipClient takes the full
    endpoint, clip-retrieval's docs the base URL; both work)."""
    url = url.rstrip("/")
    return url if url.endswith("/knn-service") else f"{url}/knn-service"


def request_body(config: KnnServiceConfig, embedding: Sequence[float] | np.ndarray) -> bytes:
    """The exact JSON body ClipClient sends for ``query(embedding_input=embedding)``.

    The embedding is sent as a list of Python floats (float32 values widened to float64, as
    ``numpy.ndarray.tolist`` gives), so the body, and hence the cache key, is deterministic.
    """
    vector = np.asarray(embedding, dtype=np.float32).ravel().tolist()
    payload = {
        "text": None,
        "image": None,
        "image_url": None,
        "embedding_input": vector,
        "deduplicate": config.deduplicate,
        "use_safety_model": config.use_safety_model,
        "use_violence_detector": config.use_violence_detector,
        "indice_name": config.indice_name,
        "use_mclip": config.use_mclip,
        "aesthetic_score": config.aesthetic_score,
        "aesthetic_weight": config.aesthetic_weight,
        "modality": config.modality,
        "num_images": config.num_images,
        "num_result_ids": config.num_images,
    }
    return json.dumps(payload).encode("utf-8")


def cache_key(endpoint: str, body: bytes) -> str:
    """The cache file name of a request: SHA-256 of everything that determines the answer.

    That is the service (its endpoint URL: two servers may hold different data under the same
    index name) and the exact request body (index, embedding, filters, number of results).
    """
    digest = hashlib.sha256()
    for part in (b"POST", endpoint.encode("utf-8"), body):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if isinstance(error, str):
            return error
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"


def _retryable(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 429 or error.code >= 500
    return isinstance(error, urllib.error.URLError | OSError | TimeoutError)


class KnnClient:
    """Query a ``knn-service`` by embedding, with a per-request disk cache.

    ``requests_sent`` counts HTTP attempts actually made (cache hits send none).
    """

    def __init__(self, config: KnnServiceConfig, cache_dir: str | os.PathLike[str] | None = None,
                 sleep: Any = time.sleep) -> None:
        self.config = config
        self.endpoint = service_endpoint(config.url)
        self.cache_dir = Path(cache_dir if cache_dir is not None else config.cache_dir)
        self.requests_sent = 0
        self.cache_hits = 0
        self._sleep = sleep

    def cache_path(self, body: bytes) -> Path:
        """Where this service's response to ``body`` is (or will be) cached."""
        return self.cache_dir / f"{cache_key(self.endpoint, body)}.json"

    def query(self, embedding: Sequence[float] | np.ndarray) -> list[dict[str, Any]]:
        """Results for one embedding ``(D,)``: a list of dicts with at least ``url`` and
        ``similarity`` (``id``, ``caption`` as the service returns them), best first."""
        body = request_body(self.config, embedding)
        path = self.cache_path(body)
        if path.is_file():
            cached = json.loads(path.read_text())
            if cached.get("endpoint") == self.endpoint and cached.get("body") == (
                    hashlib.sha256(body).hexdigest()):
                self.cache_hits += 1
                return cached["results"]
        results = self._post(body)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"endpoint": self.endpoint,
                                       "indice_name": self.config.indice_name,
                                       "body": hashlib.sha256(body).hexdigest(),
                                       "results": results}))
        return results

    def query_many(self, embeddings: np.ndarray) -> list[list[dict[str, Any]]]:
        """:meth:`query` for each row of ``embeddings`` ``(Q, D)``, in order."""
        return [self.query(row) for row in np.asarray(embeddings)]

    def _post(self, body: bytes) -> list[dict[str, Any]]:
        attempts = self.config.retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                delay = self.config.backoff_s * 2 ** (attempt - 1)
                LOGGER.info("knn-service: retry %d/%d in %.2f s after %s", attempt,
                            self.config.retries, delay, reason)
                self._sleep(delay)
            request = urllib.request.Request(
                self.endpoint, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            )
            self.requests_sent += 1
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    raw = response.read()
            except Exception as error:  # classified: retry, or fail at once
                if not _retryable(error):
                    raise KnnServiceError(
                        f"the kNN service at {self.endpoint} rejected the query "
                        f"({_describe(error)}); check knn.indice_name "
                        f"'{self.config.indice_name}' and the request options"
                    ) from None
                reason = _describe(error)
                continue
            return self._parse(raw)
        raise KnnServiceUnavailableError(
            f"the kNN service at {self.endpoint} is unavailable ({reason} after {attempts} "
            f"attempt(s) with a {self.config.timeout_s:g} s timeout); try again later, point "
            "knn.url at another server, or use the local gallery index"
        )

    def _parse(self, raw: bytes) -> list[dict[str, Any]]:
        try:
            payload = json.loads(raw)
        except ValueError:
            raise KnnServiceError(
                f"the kNN service at {self.endpoint} answered with something that is not JSON "
                f"({raw[:60]!r}...); check that knn.url points at a clip-retrieval knn-service"
            ) from None
        if isinstance(payload, dict) and "error" in payload:
            raise KnnServiceError(
                f"the kNN service at {self.endpoint} returned an error: {payload['error']}"
            )
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise KnnServiceError(
                f"the kNN service at {self.endpoint} did not return a list of results; check "
                "that knn.url points at a clip-retrieval knn-service"
            )
        return payload


# --------------------------------------------------------------------------------------------
# Image download
# --------------------------------------------------------------------------------------------

@dataclass
class DownloadResult:
    """One URL: ``ok`` with the saved ``path``, or not ok with a one-line ``reason``."""

    url: str
    ok: bool
    path: str | None = None
    reason: str | None = None
    cached: bool = False


@dataclass
class DownloadReport:
    """Per-URL results in input order and the counts of successes and failures."""

    results: list[DownloadResult] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        """URLs whose image is on disk and decodes."""
        return sum(result.ok for result in self.results)

    @property
    def n_failed(self) -> int:
        """URLs that could not be downloaded or are not an image."""
        return len(self.results) - self.n_ok

    def failure_reasons(self) -> dict[str, int]:
        """How many URLs failed for each reason."""
        counts: dict[str, int] = {}
        for result in self.results:
            if not result.ok:
                counts[result.reason or "unknown"] = counts.get(result.reason or "unknown", 0) + 1
        return counts


def image_file_name(url: str) -> str:
    """The file an image URL is saved as: the SHA-256 of the URL (its extension is not
    trusted; the decoded format decides how it is read)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest() + ".img"


def _check_image(data: bytes) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return f"not a readable image ({type(error).__name__})"
    return None


def _download_one(url: str, folder: Path, timeout: float, max_bytes: int) -> DownloadResult:
    target = folder / image_file_name(url)
    if target.is_file():
        return DownloadResult(url, True, str(target), cached=True)
    if not url.lower().startswith(("http://", "https://")):
        return DownloadResult(url, False, reason="not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except Exception as error:  # every failure is a counted reason, never raised
        return DownloadResult(url, False, reason=_describe(error))
    if len(data) > max_bytes:
        return DownloadResult(url, False, reason=f"larger than {max_bytes} bytes")
    problem = _check_image(data)
    if problem:
        return DownloadResult(url, False, reason=problem)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return DownloadResult(url, True, str(target))


def download_images(
    urls: Iterable[str],
    folder: str | os.PathLike[str],
    max_concurrency: int = 16,
    timeout: float = 10.0,
    max_bytes: int = 50 * 2**20,
) -> DownloadReport:
    """Download ``urls`` into ``folder`` with at most ``max_concurrency`` requests in flight.

    Each URL is saved as ``folder/<sha256(url)>.img`` once it has been checked to decode as an
    image (already present files are reused without a request). Failures (HTTP errors,
    timeouts after ``timeout`` seconds, refused connections, non-images, files over
    ``max_bytes``) are recorded per URL with their reason, never raised. Results keep the
    input order; duplicate URLs are fetched once.
    """
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    url_list = list(urls)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(url_list))
    with ThreadPoolExecutor(max_workers=min(max_concurrency, max(1, len(unique)))) as pool:
        fetched = dict(zip(
            unique,
            pool.map(lambda url: _download_one(url, target, timeout, max_bytes), unique),
            strict=True,
        ))
    report = DownloadReport([fetched[url] for url in url_list])
    if report.n_failed:
        LOGGER.info("downloaded %d of %d images; failures: %s", report.n_ok,
                    len(report.results), report.failure_reasons())
    return report
