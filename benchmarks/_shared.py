"""What the benchmark scripts share: the real photos they read and the random-weight models."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import pandas as pd

from cliprobe.config.schema import ModelConfig
from cliprobe.datasets.manifest import build_manifest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGENET_SAMPLE = SHARED_DATA / "imagenet_sample_1000"


def parser(doc: str | None, images: int, arch: str) -> argparse.ArgumentParser:
    """An argument parser with the options every throughput benchmark takes."""
    parse = argparse.ArgumentParser(description=doc,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--images", type=int, default=images)
    parse.add_argument("--arch", default=arch)
    parse.add_argument("--batch-size", type=int, default=32)
    parse.add_argument("--data", type=Path, default=IMAGENET_SAMPLE)
    return parse


def sample_manifest(data: Path, images: int) -> pd.DataFrame:
    """A manifest of the first ``images`` photos of the ImageNet one-per-class sample."""
    labels = pd.read_csv(data / "labels.csv").head(images)
    return build_manifest(pd.DataFrame({"image_id": labels["path"], "path": labels["path"],
                                        "label": labels["class_name"]}))


def random_model(arch: str) -> ModelConfig:
    """A seeded random-weight model of ``arch`` (same speed as trained weights)."""
    return ModelConfig(arch=arch, pretrained=None, random_init_seed=0)


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(load_only: bool = False) -> str:
    """One line naming the CPU, its cores and the load average (noisy figures need both)."""
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    if load_only:
        return f"load average (1, 5, 15 min): {load}"
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average (1, 5, 15 min): {load}"
