"""The ``torchvision`` source on its offline path: fake caches in torchvision's own layouts, built
by the test. CIFAR-10 (array-stored: written out as PNG files) with torchvision's md5 check patched
out, since the fixture's bytes are not the real batches; DTD (file-stored: linked as is)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import png_bytes
from PIL import Image

from cliprobe.config.schema import DatasetConfig, SubsampleConfig
from cliprobe.datasets.sources import materialise
from cliprobe.datasets.subsample import subsample
from cliprobe.errors import DataError

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


def _fake_cifar10(root: Path, n: int = 20) -> np.ndarray:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, (n, 3 * 32 * 32), dtype=np.uint8)
    labels = [i % 10 for i in range(n)]
    (folder / "test_batch").write_bytes(pickle.dumps({"data": data, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR_CLASSES}))
    return data


def _config(**source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {"kind": "torchvision", **source}})


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's md5 check of the CIFAR batches always passes (fixture bytes are fake)."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_from_a_fake_cache_is_written_as_png_files(
        tmp_path: Path, no_md5: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")  # the offline path: never download
    cache = tmp_path / "cache"
    data = _fake_cifar10(cache / "torchvision")
    rows, info = materialise(_config(name="CIFAR10", split="test", cache_dir=str(cache)),
                             "cifar10", tmp_path / "raw")
    assert len(rows) == 20 and rows["image_id"].iloc[3] == "test/00003.png"
    assert rows["label"].tolist()[:3] == ["airplane", "automobile", "bird"]
    pixels = np.asarray(Image.open(tmp_path / "raw" / "test" / "00003.png"))
    assert np.array_equal(pixels, data[3].reshape(3, 32, 32).transpose(1, 2, 0))
    assert info["split"] == "test" and "Krizhevsky" in str(info["license"])
    marker = cache / "torchvision-files" / "CIFAR10" / "test" / ".complete.json"
    stamp = marker.stat().st_mtime_ns
    again, _ = materialise(_config(name="CIFAR10", split="test", cache_dir=str(cache)),
                           "cifar10", tmp_path / "raw2")
    assert again.equals(rows) and marker.stat().st_mtime_ns == stamp  # PNGs written once
    picked = subsample(rows, SubsampleConfig(classes=3, per_class=1, seed=0))
    assert len(picked) == 3


def test_dtd_files_are_linked_with_torchvision_class_names(tmp_path: Path) -> None:
    root = tmp_path / "tvroot"
    data = root / "dtd" / "dtd"
    lines = []
    for n, texture in enumerate(["banded", "zig_zagged"]):
        for i in range(2):
            image = data / "images" / texture / f"{texture}_{i:04d}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(png_bytes(n * 10 + i))
            lines.append(f"{texture}/{image.name}")
    (data / "labels").mkdir()
    (data / "labels" / "test1.txt").write_text("\n".join(lines) + "\n")
    rows, _ = materialise(_config(name="DTD", split="test", local_dir=str(root)), "dtd",
                          tmp_path / "raw")
    assert sorted(rows["label"].unique()) == ["banded", "zig zagged"]
    assert rows["image_id"].iloc[0] == "dtd/dtd/images/banded/banded_0000.jpg"
    assert (tmp_path / "raw" / rows["image_id"].iloc[0]).read_bytes() == png_bytes(0)


def test_missing_offline_and_local_dir_errors(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    with pytest.raises(DataError) as error:
        materialise(_config(name="CIFAR100", cache_dir=str(tmp_path / "cache")), "c100",
                    tmp_path / "raw")
    message = str(error.value)
    assert message.startswith("dataset 'c100' (CIFAR100 via torchvision) is not in the cache")
    assert "CLIPROBE_OFFLINE=1" in message and "dataset.c100.source.local_dir" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"finds no usable STL10 .*source\.local_dir"):
        materialise(_config(name="STL10", local_dir=str(tmp_path / "empty")), "stl",
                    tmp_path / "raw")


def test_splits_are_checked_per_dataset() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not one of"):
        _config(name="OxfordIIITPet", split="val")
