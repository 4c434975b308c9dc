"""Helpers of the dataset tests: tiny images and archives built by the tests (nothing binary is
committed) and a loopback HTTP server with Range requests, truncation and a request log."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A small, distinct PNG."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def make_tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz holding ``files`` (member name -> bytes)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A .zip holding ``files`` (member name -> bytes)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@dataclass
class Server:
    """A loopback HTTP server over a folder: Range requests, optional truncation, a request log."""

    root: Path
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    truncate_once: set[str] = field(default_factory=set)  # paths cut short on first request
    fail: dict[str, int] = field(default_factory=dict)  # path -> HTTP status to answer
    content_type: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    active: int = 0  # requests inside their delay (concurrency, see do_GET)
    max_active: int = 0
    serving: int = 0  # requests not yet fully counted in bytes_sent
    bytes_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def idle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every handler has finished and counted what it sent.

        A client may read the whole body before the handler thread adds it to ``bytes_sent``.
        """
        deadline = time.monotonic() + timeout
        while self.serving and time.monotonic() < deadline:
            time.sleep(0.01)

    def served(self, name: str) -> int:
        """How many requests asked for a path ending in ``name``."""
        return sum(p.endswith(name) for p, _ in self.requests)


def handler_for(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with server.lock:
                server.requests.append((path, self.headers.get("Range")))
                server.active += 1
                server.serving += 1
                server.max_active = max(server.max_active, server.active)
            # "active" spans the delay only: once the response starts, the client may already
            # send its next request before this thread runs again (a race on a loaded machine).
            try:
                if server.delay:
                    time.sleep(server.delay)
            finally:
                with server.lock:
                    server.active -= 1
            try:
                self._serve(path)
            finally:
                with server.lock:
                    server.serving -= 1

        def _serve(self, path: str) -> None:
            if path in server.fail:
                self.send_error(server.fail[path])
                return
            file = server.root / path.lstrip("/")
            if not file.is_file():
                self.send_error(404)
                return
            data = file.read_bytes()
            start, status = 0, 200
            wanted = self.headers.get("Range")
            if wanted and wanted.startswith("bytes="):
                start = int(wanted[6:].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", server.content_type.get(path,
                                                                      "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if path in server.truncate_once:
                server.truncate_once.discard(path)
                body = body[: len(body) // 2]  # promise everything, send half, hang up
                self.close_connection = True
            self.wfile.write(body)
            with server.lock:
                server.bytes_sent += len(body)

    return Handler
