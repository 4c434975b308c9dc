"""Revisited Oxford / Paris with query boxes: every query is cut to its bounding box before it
is embedded, and the Easy / Medium / Hard mAP and mP@k equal revisitop's own ``compute_map``.

The fixture is an Oxford-style folder (gallery and query photos plus a ``gnd_*.mat`` with
zero-based boxes) read by cliprobe's real source and reader. The reference side does what
revisitop's ``python/example_process_images.py`` and ``example_evaluate.py`` do: ``pil_loader
(path).crop(bbx)`` for queries, ``sim = X.T @ Q``, ``ranks = argsort(-sim, axis=0)``, then its
``compute_map`` on the E / M / H ``ok`` / ``junk`` sets, run from a copy of filipradenovic/revisitop
beside the project (``$CLIPROBE_REVISITOP``, default /work/ext/revisitop) by a Python whose numpy
still has ``in1d`` (``$CLIPROBE_REVISITOP_PYTHON``); without them that comparison is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.manifest import build_manifest
from cliprobe.datasets.sources import materialise
from cliprobe.embedding.reader import ManifestImages
from cliprobe.io.embeddings import EmbeddingTable
from cliprobe.scores.estimates import Estimator
from cliprobe.scores.retrieval import revisited_scores

REVISITOP = Path(os.environ.get("CLIPROBE_REVISITOP", "/work/ext/revisitop"))
REVISITOP_PYTHON = os.environ.get("CLIPROBE_REVISITOP_PYTHON", "/work/ext/cb-venv/bin/python")
KAPPAS = [1, 5, 10]
COLOURS = {"all_souls": (200, 40, 40), "balliol": (40, 200, 40), "radcliffe": (40, 40, 200)}
GALLERY = [f"{landmark}_{i:06d}" for landmark in COLOURS for i in range(1, 5)]
#: each query shows its landmark inside the box and another landmark around it
QUERIES = [("all_souls_000100", "all_souls", "balliol"),
           ("balliol_000100", "balliol", "radcliffe"),
           ("radcliffe_000100", "radcliffe", "all_souls")]
BOXES = [[8.4, 6.0, 40.6, 30.0], [20.0, 12.5, 60.0, 44.0], [3.0, 3.0, 30.0, 21.7]]


def _photo(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (64, 48),
           ) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-60, 60, size=(size[1], size[0], 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def oxford(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An Oxford-style folder, its manifest (cliprobe's source) and the ground truth."""
    from scipy.io import savemat

    folder = tmp_path_factory.mktemp("oxford")
    images = folder / "jpg"
    images.mkdir()
    landmarks = list(COLOURS)
    for i, name in enumerate(GALLERY):
        landmark, number = name.rsplit("_", 1)
        # photos drift towards the next landmark's colour, so rankings are not perfect
        weight = (0.0, 0.45, 0.6, 0.2)[int(number) - 1]
        nxt = COLOURS[landmarks[(landmarks.index(landmark) + 1) % 3]]
        colour = tuple(round((1 - weight) * a + weight * b)
                       for a, b in zip(COLOURS[landmark], nxt, strict=True))
        Image.fromarray(_photo(colour, i)).save(images / f"{name}.png")
    for i, ((name, inside, outside), box) in enumerate(zip(QUERIES, BOXES, strict=True)):
        pixels = _photo(COLOURS[outside], 100 + i)
        x1, y1, x2, y2 = (round(v) for v in box)
        pixels[y1:y2, x1:x2] = _photo(COLOURS[inside], 200 + i)[y1:y2, x1:x2]
        Image.fromarray(pixels).save(images / f"{name}.png")
    # easy: the first two of the landmark, hard: the third, junk: the fourth and one other
    gnd = []
    for q, (_, inside, _) in enumerate(QUERIES):
        own = [GALLERY.index(f"{inside}_{i:06d}") for i in range(1, 5)]
        other = GALLERY.index(f"{QUERIES[(q + 1) % 3][1]}_000001")
        gnd.append({"bbx": BOXES[q], "easy": own[:2], "hard": own[2:3],
                    "junk": [own[3], other]})
    record = np.dtype([("bbx", object), ("easy", object), ("hard", object), ("junk", object)])
    cells = np.zeros((1, len(gnd)), dtype=record)
    for i, entry in enumerate(gnd):  # zero-based boxes, MATLAB's 1-based indices
        cells[0, i] = (np.asarray(entry["bbx"], float).reshape(1, 4),
                       *(np.asarray(entry[k], float).reshape(1, -1) + 1
                         for k in ("easy", "hard", "junk")))
    names = {key: np.array([[n] for n in values], dtype=object)
             for key, values in (("imlist", GALLERY), ("qimlist", [q[0] for q in QUERIES]))}
    savemat(folder / "gnd_roxford5k.mat", {**names, "gnd": cells})
    config = DatasetConfig.model_validate({"source": {
        "kind": "oxford_paris", "images": [{"url": "https://x/oxbuild_images-v1.tgz"}],
        "gnd": {"url": "https://x/gnd_roxford5k.mat"}, "local_dir": str(folder)}})
    raw = folder / "raw"
    rows, _ = materialise(config, "roxford5k", raw)
    return {"folder": folder, "raw": raw, "manifest": build_manifest(rows), "gnd": gnd}


def _features(image: Image.Image) -> np.ndarray:
    """A tiny deterministic 'model': the image at 6x6 pixels, L2-normalised."""
    vector = np.asarray(image.convert("RGB").resize((6, 6), Image.Resampling.BILINEAR),
                        dtype=np.float64).ravel()
    return vector / np.linalg.norm(vector)


def _cliprobe_table(oxford: dict[str, object], crop: bool = True) -> EmbeddingTable:
    manifest = oxford["manifest"]
    if not crop:
        manifest = manifest.assign(query_box=None)
    images = ManifestImages(manifest, oxford["raw"], lambda image, context: image, _features)
    vectors = np.stack([images[i].tensor for i in range(len(images))]).astype(np.float32)
    n = len(manifest)
    return EmbeddingTable(manifest["image_id"].to_numpy(dtype=object),
                          manifest["label"].to_numpy(dtype=object), np.zeros(n, np.int64),
                          vectors, {}, np.array([""] * n, dtype=object))


def _scores(oxford: dict[str, object], crop: bool = True) -> dict[str, dict]:
    table = _cliprobe_table(oxford, crop)
    metrics, facts = revisited_scores(table, table, oxford["manifest"],
                                      Estimator(0, "c", 0, 0.95), tuple(KAPPAS))
    assert facts["revisited"]["queries"] == 3 and facts["revisited"]["gallery"] == 12
    return metrics


def test_queries_are_cut_to_their_box_before_embedding(oxford: dict[str, object]) -> None:
    table = _cliprobe_table(oxford)
    row = list(table.image_ids).index("query/balliol_000100.png")
    with Image.open(oxford["folder"] / "jpg" / "balliol_000100.png") as image:
        expected = _features(image.convert("RGB").crop(BOXES[1]))  # revisitop's crop
    np.testing.assert_allclose(table.vectors[row], expected, rtol=1e-6)
    gallery = list(table.image_ids).index("gallery/balliol_000001.png")
    with Image.open(oxford["folder"] / "jpg" / "balliol_000001.png") as image:
        np.testing.assert_allclose(table.vectors[gallery], _features(image), rtol=1e-6)
    # the box decides the ranking: with the whole image the queries find the wrong landmark
    assert _scores(oxford)["revisited_map_easy"]["value"] > (
        _scores(oxford, crop=False)["revisited_map_easy"]["value"] + 0.3)


def _revisitop_map(oxford: dict[str, object], tmp_path: Path) -> dict[str, dict]:
    """revisitop's compute_map on ranks built the way its examples build them."""
    folder = oxford["folder"] / "jpg"

    def pil_loader(name: str) -> Image.Image:
        with open(folder / f"{name}.png", "rb") as handle:
            return Image.open(handle).convert("RGB")

    X = np.stack([_features(pil_loader(name)) for name in GALLERY], axis=1)
    Q = np.stack([_features(pil_loader(name).crop(gnd["bbx"]))
                  for (name, _, _), gnd in zip(QUERIES, oxford["gnd"], strict=True)], axis=1)
    ranks = np.argsort(-(X.T @ Q), axis=0)
    np.save(tmp_path / "ranks.npy", ranks)
    (tmp_path / "gnd.json").write_text(json.dumps(oxford["gnd"]))
    script = f"""
import json, sys
import numpy as np
sys.path.insert(0, {str(REVISITOP / "python")!r})
from evaluate import compute_map
ranks = np.load({str(tmp_path / "ranks.npy")!r})
gnd = json.load(open({str(tmp_path / "gnd.json")!r}))
sets = {{"easy": (["easy"], ["junk", "hard"]), "medium": (["easy", "hard"], ["junk"]),
        "hard": (["hard"], ["junk", "easy"])}}
out = {{}}
for protocol, (ok, junk) in sets.items():
    gnd_t = [{{"ok": np.concatenate([g[k] for k in ok]),
              "junk": np.concatenate([g[k] for k in junk])}} for g in gnd]
    mAP, aps, mpr, prs = compute_map(ranks, gnd_t, {KAPPAS!r})
    out[protocol] = {{"map": float(mAP), "aps": aps.tolist(), "mpr": np.asarray(mpr).tolist()}}
print(json.dumps(out))
"""
    result = subprocess.run([REVISITOP_PYTHON, "-c", script], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


@pytest.mark.skipif(not (REVISITOP / "python" / "evaluate.py").is_file()
                    or not Path(REVISITOP_PYTHON).is_file(),
                    reason="revisitop is not fetched beside the project ($CLIPROBE_REVISITOP, "
                           "$CLIPROBE_REVISITOP_PYTHON)")
def test_map_with_query_boxes_equals_revisitops_compute_map(
    oxford: dict[str, object], tmp_path: Path
) -> None:
    ours = _scores(oxford)
    theirs = _revisitop_map(oxford, tmp_path)
    for protocol in ("easy", "medium", "hard"):
        assert ours[f"revisited_map_{protocol}"]["value"] == pytest.approx(
            theirs[protocol]["map"], abs=1e-12), protocol
        for kappa, expected in zip(KAPPAS, theirs[protocol]["mpr"], strict=True):
            assert ours[f"revisited_mp_{protocol}_at_{kappa}"]["value"] == pytest.approx(
                expected, abs=1e-12), (protocol, kappa)
    # not a degenerate case: the protocols differ and the ranking is imperfect
    assert len({round(theirs[p]["map"], 9) for p in ("easy", "medium", "hard")}) == 3
    assert 0.0 < theirs["medium"]["map"] < 1.0
