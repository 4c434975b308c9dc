"""Messages between a stage command and a worker: length-prefixed JSON over a Unix socket;
the request also carries the stage's stdout and stderr file descriptors."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")
MAX_MESSAGE = 16 * 2**20


class ConnectionLost(Exception):
    """The other side closed the connection before a whole message arrived."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one message (and, with the first bytes, ``fds``)."""
    body = json.dumps(message).encode()
    data = HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        data = data[sent:]
    if data:
        sock.sendall(data)


def _read_exactly(sock: socket.socket, size: int, buffer: bytearray) -> None:
    while len(buffer) < size:
        chunk = sock.recv(size - len(buffer))
        if not chunk:
            raise ConnectionLost("connection closed mid-message")
        buffer.extend(chunk)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """One message and the file descriptors that came with it."""
    buffer = bytearray()
    fds: list[int] = []
    if max_fds:
        data, fds, _flags, _address = socket.recv_fds(sock, 65536, max_fds)
        if not data:
            raise ConnectionLost("connection closed")
        buffer.extend(data)
    _read_exactly(sock, HEADER.size, buffer)
    (size,) = HEADER.unpack(bytes(buffer[: HEADER.size]))
    if size > MAX_MESSAGE:
        raise ConnectionLost(f"message of {size} bytes refused")
    _read_exactly(sock, HEADER.size + size, buffer)
    return json.loads(bytes(buffer[HEADER.size : HEADER.size + size])), fds
