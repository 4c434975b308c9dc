"""The corruption library's own output for the test image: what cliprobe must equal, byte for byte.

Run as a script to re-pin the digests after a deliberate upgrade of imagecorruptions (or of
numpy / scipy / scikit-image / OpenCV / numba, which it computes with):

    python tests/manipulations/corruption_reference.py > tests/manipulations/corruption_digests.json
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

import numpy as np
from PIL import Image

from cliprobe.manipulations.corruptions import ALL_CORRUPTIONS, imagenet_c_construction

SEVERITIES = (1, 2, 3, 4, 5)
#: The library's two functions that take a ``seed`` (else they seed from OS entropy).
SEEDED_BY_ARGUMENT = ("glass_blur", "impulse_noise")
LIBRARIES = ("imagecorruptions-imaug", "numpy", "scipy", "scikit-image", "opencv-python",
             "numba", "pillow")


def test_image() -> Image.Image:
    """A real photo, as the imagenet_c construction makes it (Resize 256 + CenterCrop 224)."""
    from skimage import data

    return imagenet_c_construction(Image.fromarray(data.astronaut()[40:440, 60:380]))


def seed_of(corruption: str, severity: int) -> int:
    return 1000 + 10 * ALL_CORRUPTIONS.index(corruption) + severity


def library_output(image: Image.Image, corruption: str, severity: int, seed: int) -> np.ndarray:
    """``imagecorruptions.corrupt`` of ``image`` with numpy's global RNG seeded by ``seed``."""
    from imagecorruptions import corrupt

    np.random.seed(seed)
    kwargs = ({"seed": int(np.random.randint(0, 2**31 - 1))}
              if corruption in SEEDED_BY_ARGUMENT else {})
    return corrupt(np.asarray(image), severity=severity, corruption_name=corruption, **kwargs)


def versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except Exception:  # not installed under that name
            continue
    return found


def digests() -> dict[str, str]:
    image = test_image()
    return {f"{c}_s{s}": hashlib.sha256(library_output(image, c, s, seed_of(c, s)).tobytes())
            .hexdigest() for c in ALL_CORRUPTIONS for s in SEVERITIES}


if __name__ == "__main__":
    print(json.dumps({"versions": versions(), "sha256": digests()}, indent=1, sort_keys=True))
