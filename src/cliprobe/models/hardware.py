"""What the CPU offers for low precision, so the embed stage can say how to use it."""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: cpuinfo flags of bf16 matrix hardware, best first, and how to name them.
BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"))


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16(cpuinfo: Path = CPUINFO) -> str | None:
    """The CPU's bf16 matrix hardware ("AMX-BF16", "AVX512-BF16"), or None."""
    flags = cpu_flags(cpuinfo)
    return next((name for flag, name in BF16_FLAGS if flag in flags), None)


def bf16_hint(model: str, precision: str, device: str, cpuinfo: Path = CPUINFO) -> str | None:
    """One line telling how to run ``model`` in bf16 on this CPU, when it would help."""
    hardware = cpu_bf16(cpuinfo)
    if device != "cpu" or precision != "fp32" or hardware is None:
        return None
    # AMX's bf16 tiles gave ~5x (issue 15); AVX512-BF16 alone, whose bf16 dot products do
    # twice the work of fp32 FMAs, gave the bare encoder 2.09x and the embed stage 1.91x on a
    # quiet 2-core AMD EPYC (benchmarks/precision.py)
    speed = ("several times faster" if hardware == "AMX-BF16"
             else "about twice as fast (measure it: benchmarks/precision.py)")
    return (f"this CPU has {hardware}: `-S model.{model}.precision=bf16` runs the model's "
            f"weights in bf16, {speed}, with embeddings within cosine 0.999 of fp32 "
            "(README \"Precision\")")
