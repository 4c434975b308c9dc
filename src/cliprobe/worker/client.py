"""Hand one stage to its model's warm worker, or say it cannot (then the stage runs here).

Standard library only, and nothing here may hang or change a result: every path that is not
"the worker ran the stage and reported its exit status" returns None, and the caller runs the
stage in its own process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cliprobe.worker import protocol
from cliprobe.worker.identity import package_dir, socket_dir, worker_key

#: Stage modules that run one model's cell (they take ``--model``). Not saliency: Grad-CAM
#: hooks into the model, which a worker shares with the stages that follow.
DELEGATED = frozenset({"embed", "classifier", "captions", "score"})
#: Set to 0 to never use workers (the stage always runs in its own process).
ENABLE_ENV = "CLIPROBE_WORKER"
#: Seconds a new worker may take to listen (it imports little before that).
START_TIMEOUT_ENV = "CLIPROBE_WORKER_START_TIMEOUT"
#: Seconds an idle worker may take to acknowledge a request (default 30).
ACK_TIMEOUT_ENV = "CLIPROBE_WORKER_ACK_TIMEOUT"
#: The split's execution settings (``cliprobe.config.stage_params.EXECUTION_FILE``).
EXECUTION_FILE = "execution.json"


def _option(argv: list[str], name: str) -> str | None:
    flag = f"--{name}"
    for position, token in enumerate(argv):
        if token == flag and position + 1 < len(argv):
            return argv[position + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def _say(message: str) -> None:
    print(f"cliprobe: {message}", file=sys.stderr, flush=True)


def worker_settings(argv: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(model, its effective params, execution settings) when this stage may use a worker:
    it runs one model's cell from its spec (``--params data/params/<stage>/....json``)."""
    model = _option(argv, "model")
    spec = Path(_option(argv, "params") or "params.yaml")
    if model is None or spec.suffix != ".json":
        return None  # run by hand on params.yaml, or declared the old way
    split = next((d for d in spec.parents if (d / EXECUTION_FILE).is_file()), None)
    if split is None:
        return None
    try:
        model_params = json.loads(spec.read_text())["model"][model]
        execution = json.loads((split / EXECUTION_FILE).read_text())["embed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the stage itself reports what is wrong
    if not execution.get("worker", True) or execution.get("backend", "local") != "local":
        return None
    return model, model_params, execution


def delegate(stage: str, argv: list[str]) -> int | None:
    """Run ``stage`` in its model's worker and return its exit status, or None to run here."""
    if stage not in DELEGATED or os.environ.get(ENABLE_ENV, "1") == "0":
        return None
    if not (hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")):
        return None  # e.g. Windows: no descriptor passing
    try:
        import fcntl
    except ImportError:
        return None
    settings = worker_settings(argv)
    folder = socket_dir()
    if settings is None or folder is None:
        return None
    model, model_params, execution = settings
    key = worker_key(model, model_params, execution.get("device"))
    try:
        lock = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # another DVC run is using this worker: run here, in parallel
        connection = _connect_or_start(folder, key, float(execution.get("worker_idle_s", 120)))
        if connection is None:
            return None
        with connection:
            return _request(connection, key, stage, argv)
    finally:
        os.close(lock)  # releases the lock


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _connect_or_start(folder: Path, key: str, idle_s: float) -> socket.socket | None:
    """A connection to the worker of ``key``, starting one when none listens (lock held)."""
    path = folder / f"{key}.sock"
    connection = _connect(path)
    if connection is not None:
        return connection
    try:
        path.unlink()  # a stale socket: its worker is gone (we hold the lock)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    log = folder / f"{key}.log"
    try:
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "cliprobe.worker.server", "--socket", str(path),
                 "--key", key, "--idle", str(idle_s), "--package", str(package_dir())],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd=str(folder),
            )
    except OSError:
        return None
    deadline = time.monotonic() + float(os.environ.get(START_TIMEOUT_ENV, "60"))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _say(f"the model worker could not start (log: {log}); running here")
            return None
        connection = _connect(path)
        if connection is not None:
            return connection
        time.sleep(0.05)
    process.kill()
    _say(f"the model worker did not start in time (log: {log}); running here")
    return None


def _request(connection: socket.socket, key: str, stage: str, argv: list[str]) -> int | None:
    """Send the stage to the worker and wait for its exit status (None: run it here).

    The stage's stdout and stderr go to the worker only after it has acknowledged the request:
    descriptors in flight to a worker that never reads them would keep this stage's output
    pipes open after it has finished on its own.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    request = {"key": key, "stage": stage, "argv": argv, "cwd": os.getcwd(),
               "env": dict(os.environ)}
    try:
        protocol.send(connection, request)
        connection.settimeout(float(os.environ.get(ACK_TIMEOUT_ENV, "30")))
        started, _ = protocol.receive(connection)
    except (OSError, protocol.ConnectionLost, ValueError):
        _say("the model worker did not take the stage; running it here")
        return None
    if started.get("event") != "started" or started.get("key") != key:
        return None
    try:
        protocol.send(connection, {"event": "streams"},
                      fds=[sys.stdout.fileno(), sys.stderr.fileno()])
        connection.settimeout(None)  # a stage takes as long as it takes
        finished, _ = protocol.receive(connection)
    except (OSError, protocol.ConnectionLost, ValueError):
        _say(f"the model worker (pid {started.get('pid')}) stopped before the stage finished; "
             "running it here")
        return None
    if finished.get("event") != "exit":
        return None
    return int(finished.get("code", 1))
