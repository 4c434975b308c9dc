"""Warm model workers: same bytes as a stage's own process, and nothing hangs or goes wrong
when a worker cannot help (stale socket, busy, killed, unstartable, mute, abandoned)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cliprobe.config.stage_params import SPLIT_DIR, spec_path
from cliprobe.devtools import compose_into, make_project
from cliprobe.worker import identity

pytestmark = pytest.mark.slow

OVERRIDES = ["model=smoke", "manipulation=[grey,fog,zoom_full]", "embed.chunk_size=2",
             "stats.bootstrap_resamples=50"]
#: (stage module, arguments) of one cell's stages, in pipeline order
CELL_STAGES = [("embed", ["--manipulation", "original"]), ("embed", ["--manipulation", "grey"]),
               ("embed", ["--manipulation", "fog"]), ("classifier", []), ("captions", []),
               ("score", ["--manipulation", "original"]), ("score", ["--manipulation", "grey"]),
               ("score", ["--manipulation", "fog"])]
ZOOM = ("embed", ["--manipulation", "zoom_full"])
CELL = ["--model", "smoke", "--dataset", "sample"]


def _spec(stage: str, args: list[str]) -> str:
    """The spec a stage command names (data/params/<dvc stage>/...): what dvc.yaml passes."""
    manipulation = args[args.index("--manipulation") + 1] if "--manipulation" in args else None
    clean = manipulation in (None, "original")
    name = {"embed": "embed" if clean else "manipulate", "classifier": "classifier",
            "captions": "captions", "score": "score_original" if clean else "score"}[stage]
    cell = {"model": "smoke", "dataset": "sample", "manipulation": manipulation or ""}
    return str(SPLIT_DIR / spec_path(name, **cell))


def _env(project: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "CLIPROBE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "CLIPROBE_STAGE_TIMES": str(project / "stage_times.jsonl"), **extra}


def _start(project: Path, stage: str, args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cliprobe.stages", stage, "--params",
                             _spec(stage, args), *CELL, *args],
                            cwd=project, env=_env(project, **env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stage(project: Path, stage: str, args: list[str], **env: str) -> tuple[str, str]:
    """Run one stage command; (where it ran: worker | process, its stderr)."""
    process = _start(project, stage, args, **env)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    last = (project / "stage_times.jsonl").read_text().splitlines()[-1]
    return json.loads(last)["where"], stderr


def _project(root: Path) -> Path:
    project = make_project(root)
    (project / "conf" / "manipulation" / "zoom_full.yaml").write_text(
        "zoom_full:\n  function: imagenet_c_zoom_blur\n  severity: 5\n"
        "  construction: full_resolution\n")
    compose_into(project, OVERRIDES)
    for stage, args in (("split_params", ["--params", "params.yaml", "--out", "data/params"]),
                        ("fetch", ["--params", "data/params", "--dataset", "sample"])):
        subprocess.run([sys.executable, "-m", "cliprobe.stages", stage, *args], cwd=project,
                       env=_env(project), check=True, capture_output=True)
    return project


def _digests(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("data/embeddings", "data/classifiers", "data/captions", "data/cells")
            for p in sorted((project / folder).rglob("*")) if p.is_file()}


#: Runs each stage command given as a JSON argument list, as `python -m cliprobe.stages` does
#: without a worker, in one fresh process (one torch import for all of them).
RUN_STAGES = (
    "import json, sys\n"
    "from cliprobe.stages import run_stage\n"
    "for command in sys.argv[1:]:\n"
    "    stage, *argv = json.loads(command)\n"
    "    if run_stage(stage, argv):\n"
    "        sys.exit(f'{stage} {argv} failed')\n"
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every cell stage run without a worker, in a fresh process of its own (not this test
    process: earlier tests may have changed torch's settings): the bytes to match."""
    project = _project(tmp_path_factory.mktemp("reference") / "project")
    commands = [json.dumps([stage, "--params", _spec(stage, args), *CELL, *args])
                for stage, args in [*CELL_STAGES, ZOOM]]
    done = subprocess.run([sys.executable, "-c", RUN_STAGES, *commands], cwd=project,
                          env=_env(project, CLIPROBE_WORKER="0"), capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return _digests(project)


@pytest.fixture()
def workers(tmp_path: Path) -> Path:
    """A private worker folder for one test (stopped afterwards)."""
    from cliprobe.worker.control import stop_workers

    folder = Path(os.environ[identity.DIR_ENV]) / tmp_path.name[-20:]
    folder.mkdir(mode=0o700)
    yield folder
    stop_workers(folder)


def _worker_pids(folder: Path) -> list[int]:
    from cliprobe.worker.control import list_workers

    return [w.pid for w in list_workers(folder) if w.pid is not None]


def test_a_warm_worker_writes_the_same_bytes(reference: dict[str, str], tmp_path: Path,
                                             workers: Path) -> None:
    project = _project(tmp_path / "project")
    env = {identity.DIR_ENV: str(workers)}
    where = [_stage(project, stage, args, **env)[0] for stage, args in CELL_STAGES]
    assert where == ["worker"] * len(CELL_STAGES)
    assert len(_worker_pids(workers)) == 1  # one worker served every stage of the model
    digests = _digests(project)
    assert digests == {k: v for k, v in reference.items() if "zoom_full" not in k}


def test_a_worker_that_cannot_help_never_blocks_a_stage(
        reference: dict[str, str], tmp_path: Path, workers: Path) -> None:
    """Slow to start, killed (stale socket), busy with another run, mute, or in a folder others
    could write to: every stage still runs, in its own process when it must, with the same
    bytes. (One project for all the cases: each costs a worker start or a torch import.)"""
    project = _project(tmp_path / "project")
    env = {identity.DIR_ENV: str(workers)}
    # a worker that does not start in time
    where, stderr = _stage(project, "embed", ["--manipulation", "original"], **env,
                           CLIPROBE_WORKER_START_TIMEOUT="0")
    assert where == "process" and "did not start in time" in stderr
    # a worker killed between stages leaves its socket and pid file: the next stage replaces it
    assert _stage(project, "embed", ["--manipulation", "grey"], **env)[0] == "worker"
    (pid,) = _worker_pids(workers)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert list(workers.glob("*.sock"))
    assert _stage(project, "embed", ["--manipulation", "fog"], **env)[0] == "worker"
    (pid,) = _worker_pids(workers)
    # another DVC run holds the worker: this stage runs in its own process, at the same time
    (lock_file,) = workers.glob("*.lock")
    with open(lock_file) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert _stage(project, "classifier", [], **env)[0] == "process"
    # a worker that does not answer (stopped): the stage does not wait for it forever
    os.kill(pid, signal.SIGSTOP)
    try:
        where, stderr = _stage(project, "captions", [], **env, CLIPROBE_WORKER_ACK_TIMEOUT="2")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert where == "process" and "did not take the stage" in stderr
    # a folder others could write to is never used
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    where, _ = _stage(project, "score", ["--manipulation", "original"],
                      **{identity.DIR_ENV: str(shared)})
    assert where == "process" and not list(shared.iterdir())
    digests = _digests(project)
    for key in ("data/embeddings/smoke/sample/original.parquet",
                "data/embeddings/smoke/sample/grey.parquet",
                "data/embeddings/smoke/sample/fog.parquet",
                "data/classifiers/smoke/sample.parquet", "data/captions/smoke/sample.parquet",
                "data/cells/smoke/sample/original/metrics.json"):
        assert digests[key] == reference[key], key


def test_a_worker_killed_mid_stage_hands_the_stage_back(
        reference: dict[str, str], tmp_path: Path, workers: Path) -> None:
    project = _project(tmp_path / "project")
    env = {identity.DIR_ENV: str(workers)}
    process = _start(project, *ZOOM, **env)
    partial = project / "data" / ".partial"
    deadline = time.monotonic() + 300
    while not list(partial.rglob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (pid,) = _worker_pids(workers)
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert "stopped before the stage finished; running it here" in stderr
    assert "chunks already complete" in stdout  # resumed from what the worker wrote
    key = "data/embeddings/smoke/sample/zoom_full.parquet"
    assert _digests(project)[key] == reference[key]


def test_a_stage_killed_mid_stage_stops_its_worker(tmp_path: Path, workers: Path) -> None:
    project = _project(tmp_path / "project")
    process = _start(project, *ZOOM, **{identity.DIR_ENV: str(workers)})
    partial = project / "data" / ".partial"
    deadline = time.monotonic() + 300
    while not list(partial.rglob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_worker_pids(workers)) == 1
    process.kill()  # DVC interrupted: the stage command dies
    process.communicate()
    deadline = time.monotonic() + 30
    while _worker_pids(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _worker_pids(workers) == []
    assert not (project / "data/embeddings/smoke/sample/zoom_full.parquet").exists()


def test_the_worker_key_covers_code_model_and_device(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"arch": "cliprobe-smoke", "pretrained": None, "random_init_seed": 0}
    key = identity.worker_key("smoke", params, "cpu")
    assert identity.worker_key("smoke", params, "cpu") == key
    assert identity.worker_key("smoke", {**params, "random_init_seed": 1}, "cpu") != key
    assert identity.worker_key("smoke", params, "cuda") != key
    assert identity.worker_key("smoke-b", params, "cpu") != key
    monkeypatch.setattr(identity, "code_fingerprint", lambda root=None: "an older version")
    assert identity.worker_key("smoke", params, "cpu") != key
    monkeypatch.undo()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert identity.worker_key("smoke", params, "cpu") != key
