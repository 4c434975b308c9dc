"""What every output records about how it was made."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("cliprobe", "torch", "torchvision", "open_clip_torch", "numpy", "pillow", "scipy",
            "scikit-image", "opencv-python", "imagecorruptions-imaug", "pandas", "pyarrow")

RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS (not a trained CLIP; numbers are not findings)"


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change a number."""
    versions: dict[str, str] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
