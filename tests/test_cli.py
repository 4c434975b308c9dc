"""The command line as a user runs it: classify, attack, compose/validate, report, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

BIN = Path(sys.executable).parent


def cliprobe(*args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLIPROBE_OFFLINE": "1", "PATH": f"{BIN}:{os.environ['PATH']}",
           **extra_env}
    return subprocess.run([str(BIN / "cliprobe"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("cli") / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    return path


def test_classify_ranks_labels_given_space_separated(photo: Path, repo: Path) -> None:
    result = cliprobe("classify", str(photo), "--labels", "coffee cup", "cat", "egg",
                      "--model", "smoke", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)
    ranking = entry["ranking"]
    assert {r["label"] for r in ranking} == {"coffee cup", "cat", "egg"}
    assert sum(r["probability"] for r in ranking) == pytest.approx(1.0)
    assert [r["probability"] for r in ranking] == sorted(
        (r["probability"] for r in ranking), reverse=True)
    assert "RANDOM WEIGHTS" in entry["weights"]


def test_classify_takes_labels_before_the_images(photo: Path, repo: Path) -> None:
    """`--labels egg cat photo.jpg` used to swallow the image ("give at least one image")."""
    for args in (["--labels", "egg", "cat", str(photo)],
                 ["--labels=egg", "cat", str(photo)],
                 ["-l", "egg", "cat", str(photo)]):
        result = cliprobe("classify", *args, "--model", "smoke", "--json", cwd=repo)
        assert result.returncode == 0, (args, result.stderr)
        [entry] = json.loads(result.stdout)
        assert entry["image"] == str(photo)
        assert {r["label"] for r in entry["ranking"]} == {"egg", "cat"}


def test_labels_and_images_are_told_apart(photo: Path) -> None:
    from cliprobe.cli import split_labels

    # what click hands over for `classify --labels egg cat photo.png typo.jpg`
    argv = ["cliprobe", "classify", "--labels", "egg", "cat", str(photo), "typo.jpg"]
    images, labels = split_labels(argv, [Path("cat"), photo, Path("typo.jpg")], ["egg"])
    assert images == [photo, Path("typo.jpg")] and labels == ["egg", "cat"]
    # images first, labels after: unchanged
    argv = ["cliprobe", "classify", str(photo), "--labels", "coffee cup", "cat"]
    images, labels = split_labels(argv, [photo, Path("cat")], ["coffee cup"])
    assert images == [photo] and labels == ["coffee cup", "cat"]


def test_classify_without_weights_fails_in_one_sentence(photo: Path, repo: Path,
                                                        tmp_path: Path) -> None:
    result = cliprobe("classify", str(photo), "--labels", "cat", "egg", cwd=repo,
                      CLIPROBE_MODEL_CACHE=str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "model=smoke" in result.stderr


def test_attack_writes_the_pipeline_manipulation(photo: Path, repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "attacked.png"
    result = cliprobe("attack", str(photo), "--word", "CAT", "--out", str(out), cwd=repo)
    assert result.returncode == 0, result.stderr
    attacked = Image.open(out)
    assert attacked.size == Image.open(photo).size
    assert attacked.tobytes() != Image.open(photo).convert("RGB").tobytes()
    typographic = tmp_path / "typographic.png"
    result = cliprobe("attack", str(photo), "--word", "iPod", "--kind", "typographic",
                      "--out", str(typographic), cwd=repo)
    assert result.returncode == 0 and "'word': 'iPod'" in result.stdout
    assert Image.open(typographic).size == (224, 224)


def test_bad_inputs_give_exit_code_2(photo: Path, repo: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    assert cliprobe("attack", str(broken), cwd=repo).returncode == 2
    assert cliprobe("attack", str(photo), "--kind", "sepia", cwd=repo).returncode == 2
    unknown = cliprobe("compose", "model=ViT-X-1", "--out", str(tmp_path / "p.yaml"), cwd=repo)
    assert unknown.returncode == 2 and "ViT-B-32" in unknown.stderr
    assert cliprobe("report", "--compare", "no-such-rev", cwd=tmp_path).returncode == 2


def test_compose_check_exit_codes(repo: Path, tmp_path: Path) -> None:
    """0 when the file equals the composition, 1 (with the remedy) when it differs."""
    out = tmp_path / "params.yaml"
    assert cliprobe("compose", "model=smoke", "--out", str(out), cwd=repo).returncode == 0
    same = cliprobe("compose", "model=smoke", "--check", "--out", str(out), cwd=repo)
    assert same.returncode == 0 and "matches" in same.stdout, same.stderr
    other = cliprobe("compose", "model=ViT-B-16", "--check", "--out", str(out), cwd=repo)
    assert other.returncode == 1
    # the remedy repeats the overrides and the file: running it makes the check pass
    assert other.stderr == (f"{out} differs from the composition of conf/ model=ViT-B-16: run "
                            f"`cliprobe compose model=ViT-B-16 --out {out}`\n")
    assert cliprobe("compose", "model=ViT-B-16", "--out", str(out), cwd=repo).returncode == 0
    assert cliprobe("compose", "model=ViT-B-16", "--check", "--out", str(out),
                    cwd=repo).returncode == 0
    out.write_text(out.read_text() + "seed: 1\n")
    edited = cliprobe("compose", "model=ViT-B-16", "--check", "--out", str(out), cwd=repo)
    assert edited.returncode == 1
    missing = cliprobe("compose", "--check", "--out", str(tmp_path / "none.yaml"), cwd=repo)
    assert missing.returncode == 1


def test_every_command_has_help(repo: Path) -> None:
    for command in ("compose", "validate", "list", "classify", "attack", "report"):
        result = cliprobe(command, "--help", cwd=repo)
        assert result.returncode == 0 and "Usage" in result.stdout


def test_list_names_the_prompt_sets_and_the_bundled_prompt_data(repo: Path) -> None:
    result = cliprobe("list", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "prompts: dataset, descriptions, imagenet80, photo_of, this_is" in result.stdout
    assert "clip_cifar10" in result.stdout and "clip_imagenet" in result.stdout
    assert "imagenet_c_clean" in result.stdout and "imagenet_c_released" in result.stdout
