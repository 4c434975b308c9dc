"""A warm worker: runs one model's stages in this process, one at a time, until idle.

Started by :mod:`cliprobe.worker.client` (``python -m cliprobe.worker.server``); never by hand.
Each request is a stage command (stage module, arguments, working directory, environment,
stdout and stderr): the worker runs it with :func:`cliprobe.stages.run_stage` exactly as the
command would have, with the model kept loaded between requests
(:func:`cliprobe.models.loader.keep_loaded_models`). If the stage's own process goes away
mid-stage (DVC interrupted or killed), the worker kills itself and its decode workers, so no
stage keeps writing outputs that nobody waits for.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from cliprobe.worker import protocol
from cliprobe.worker.identity import package_dir

#: Exit status of a worker whose stage command went away mid-stage.
EXIT_ABANDONED = 3


class Stopped(BaseException):
    """SIGTERM (``cliprobe workers --stop``): leave the stage and the serving loop."""


def _stop(*_: object) -> None:
    raise Stopped


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} worker {os.getpid()}: {message}", flush=True)


class Watchdog(threading.Thread):
    """Kills this worker (and its decode workers) when the stage's process disconnects."""

    #: Seconds between checks of the connection while the stage runs.
    POLL_S = 0.5

    def __init__(self, connection: socket.socket) -> None:
        super().__init__(daemon=True)
        self.connection = connection
        self.done = threading.Event()
        # stop() writes here, so the thread leaves its select at once: the stage's exit
        # status is sent after it has stopped, and waiting out a poll cost every request up to
        # POLL_S (a quarter of a second on average, 0.5 s on a 0.5 s stage)
        self._wake_read, self._wake_write = os.pipe()

    def stop(self) -> None:
        """Stop watching (the stage has finished) and wait for the thread."""
        self.done.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        self.join()
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)

    def run(self) -> None:
        while not self.done.is_set():
            readable, _, _ = select.select([self.connection, self._wake_read], [], [],
                                           self.POLL_S)
            if self.connection not in readable or self.done.is_set():
                continue
            if peer_gone(self.connection):
                log("the stage's process went away mid-stage: stopping")
                os.killpg(os.getpgrp(), signal.SIGKILL)
                os._exit(EXIT_ABANDONED)
            self.done.wait(self.POLL_S)  # unexpected bytes from the stage: ignored


def peer_uid(connection: socket.socket) -> int | None:
    """The user id of the connected process (Linux), None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, option, size))
    return uid


def peer_gone(connection: socket.socket) -> bool:
    """True when the other side has closed the connection (never waits)."""
    timeout = connection.gettimeout()
    connection.setblocking(False)  # with a timeout, Python would first wait for data
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        connection.settimeout(timeout)


def run_request(request: dict[str, Any], fds: list[int]) -> int:
    """Run one stage with the request's cwd, environment, argv, stdout and stderr."""
    from cliprobe.stages import run_stage

    saved_cwd, saved_env, saved_argv = os.getcwd(), dict(os.environ), sys.argv
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["cliprobe.stages", request["stage"], *request["argv"]]
        try:
            return run_stage(request["stage"], list(request["argv"]))
        except Stopped:
            raise
        except BaseException:  # the stage's own process would have printed it and failed
            traceback.print_exc()
            return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in (*saved_fds, *fds):
            os.close(fd)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv


def serve_one(connection: socket.socket, key: str) -> None:
    """Read one request from ``connection`` and run it (invalid requests are dropped)."""
    if peer_uid(connection) not in (None, os.getuid()):
        log("refused a connection from another user")
        return
    connection.settimeout(10.0)
    try:
        request, _ = protocol.receive(connection)
    except (OSError, protocol.ConnectionLost, ValueError) as error:
        log(f"dropped an unreadable request ({error})")
        return
    if request.get("key") != key:
        log("dropped a request for another worker")
        return
    if peer_gone(connection):  # the stage gave up waiting for us: it runs on its own
        log("dropped a request whose stage had gone")
        return
    try:
        protocol.send(connection, {"event": "started", "key": key, "pid": os.getpid()})
        streams, fds = protocol.receive(connection, max_fds=2)
    except (OSError, protocol.ConnectionLost, ValueError) as error:
        log(f"the stage went away before sending its output streams ({error})")
        return
    if streams.get("event") != "streams" or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        log("dropped a request without its output streams")
        return
    connection.settimeout(None)
    watchdog = Watchdog(connection)
    watchdog.start()
    started = time.perf_counter()
    code = run_request(request, fds)
    watchdog.stop()
    log(f"{request['stage']} {' '.join(request['argv'])}: exit {code} in "
        f"{time.perf_counter() - started:.1f} s")
    with contextlib.suppress(OSError):
        protocol.send(connection, {"event": "exit", "code": code})


def serve(path: Path, key: str, idle_s: float) -> None:
    """Listen on ``path`` and serve requests until ``idle_s`` seconds pass without one."""
    from cliprobe.models import loader

    loader.keep_loaded_models()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(16)
    inode = path.stat().st_ino
    (path.parent / f"{key}.pid").write_text(str(os.getpid()))
    log(f"serving {path} (idle timeout {idle_s:g} s)")
    signal.signal(signal.SIGTERM, _stop)
    listener.settimeout(idle_s)
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                log("idle: stopping")
                break
            with connection:
                serve_one(connection, key)
    except Stopped:
        log("asked to stop")
    finally:
        listener.close()
        try:
            if path.stat().st_ino == inode:
                path.unlink()
        except OSError:
            pass
        pid_file = path.parent / f"{key}.pid"
        try:
            if pid_file.read_text() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    parse = argparse.ArgumentParser(description=__doc__)
    parse.add_argument("--socket", type=Path, required=True)
    parse.add_argument("--key", required=True)
    parse.add_argument("--idle", type=float, default=120.0)
    parse.add_argument("--package", type=Path, required=True)
    args = parse.parse_args(argv)
    if package_dir() != args.package.resolve():
        log(f"imports cliprobe from {package_dir()}, not {args.package}: not serving")
        raise SystemExit(1)
    serve(args.socket, args.key, args.idle)


if __name__ == "__main__":
    main()
