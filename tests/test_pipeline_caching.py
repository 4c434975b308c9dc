"""End to end: the real DVC pipeline with the smoke model, and the four caching guarantees.

1. a second `dvc repro` runs no stage but the scan of local inputs (always run, cheap);
2. changing one manipulation's parameter re-runs only that manipulation's cells (and the
   aggregate / plot stages), never the clean embeddings;
3. adding a dataset runs only its cells;
   and replacing one photo of that (user's) folder re-runs exactly that dataset's stages;
4. model A -> B -> A through `dvc exp run -S` (DVC's own Hydra composition): the return to A
   runs no embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliprobe.devtools import RAN, make_project, repro, run

pytestmark = pytest.mark.slow

BASE = ["model=smoke", "embed.num_workers=0", "stats.bootstrap_resamples=200"]


def _run(args: list[str], cwd: Path) -> str:
    return run(args, cwd)


def _repro(project: Path, overrides: list[str]) -> set[str]:
    return repro(project, overrides)[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    root = make_project(tmp_path_factory.mktemp("pipeline") / "project", repo)
    # a second random-weight model, so the test can switch models offline
    (root / "conf" / "model" / "smoke-b.yaml").write_text(
        "smoke-b:\n  arch: cliprobe-smoke\n  pretrained: null\n  random_init_seed: 1\n"
    )
    return root


def test_caching_guarantees(project: Path, tmp_path: Path) -> None:
    first = _repro(project, BASE)
    assert first == {
        "scan", "fetch@sample", "embed@smoke-sample", "manipulate@smoke-sample-blurred",
        "manipulate@smoke-sample-cropped", "manipulate@smoke-sample-grey",
        "classifier@smoke-sample", "captions@smoke-sample", "score_original@smoke-sample",
        "score@smoke-sample-blurred", "score@smoke-sample-cropped", "score@smoke-sample-grey",
        "aggregate", "words", "plot", "report",
    }  # no saliency stage: saliency.cells is empty by default
    summary = json.loads((project / "metrics" / "summary.json").read_text())
    assert set(summary["smoke"]["sample"]) == {"original", "blurred", "cropped", "grey"}
    assert summary["smoke"]["sample"]["original"]["n_images"] == 12
    figures = sorted(p.name for p in (project / "plots" / "figures").glob("*.png"))
    assert figures == ["box_smoke_sample.png", "class_bars_smoke_sample.png",
                       "gallery_smoke_sample_blurred.png", "gallery_smoke_sample_cropped.png",
                       "gallery_smoke_sample_grey.png", "heatmap_smoke.png",
                       "hist_smoke_sample.png"]
    table = (project / "metrics" / "seed001_table.csv").read_text().splitlines()
    assert table[0] == "model,dataset,original,blurred,cropped,grey"

    # 1. nothing changed: nothing runs (the scan finds the same listing)
    assert _repro(project, BASE) == {"scan"}

    # 2. one manipulation's parameter: only its cells, plus aggregate and plot
    changed = _repro(project, [*BASE, "manipulation.blurred.sigma=1.5"])
    assert changed == {"scan", "manipulate@smoke-sample-blurred", "score@smoke-sample-blurred",
                       "aggregate", "words", "plot", "report"}

    # 3. a new dataset: only its cells (and the aggregate / plot)
    folder = tmp_path / "my_images"
    from PIL import Image
    from skimage import data

    # 12 images (the gallery must hold retrieval.neighbours = 10 of them): 3 classes x 4 views
    for label, pixels in {"cat": data.chelsea(), "coffee": data.coffee(),
                          "astronaut": data.astronaut()}.items():
        (folder / label).mkdir(parents=True)
        views = [pixels, pixels[::-1], pixels[:, ::-1], pixels[20:-20, 30:-30]]
        for i, view in enumerate(views):
            Image.fromarray(view.copy()).save(folder / label / f"{i}.png")
    with_folder = [*BASE, "manipulation.blurred.sigma=1.5", "+dataset=image_folder",
                   f"dataset.image_folder.source.path={folder}"]
    added = _repro(project, with_folder)
    assert added == {
        "scan", "fetch@image_folder", "embed@smoke-image_folder",
        "manipulate@smoke-image_folder-blurred", "manipulate@smoke-image_folder-cropped",
        "manipulate@smoke-image_folder-grey", "classifier@smoke-image_folder",
        "captions@smoke-image_folder",
        "score_original@smoke-image_folder", "score@smoke-image_folder-blurred",
        "score@smoke-image_folder-cropped", "score@smoke-image_folder-grey",
        "aggregate", "words", "plot", "report",
    }
    before = json.loads((project / "metrics" / "summary.json").read_text())

    # 4. one photo of the user's folder replaced under the same name: that dataset's stages
    # re-run (its classifier too: the manifest lists the new bytes), `sample`'s do not
    Image.fromarray(data.coffee()[::-1].copy()).save(folder / "cat" / "0.png")
    replaced = _repro(project, with_folder)
    assert replaced == {
        "scan", "fetch@image_folder", "embed@smoke-image_folder",
        "manipulate@smoke-image_folder-blurred", "manipulate@smoke-image_folder-cropped",
        "manipulate@smoke-image_folder-grey", "classifier@smoke-image_folder",
        "score_original@smoke-image_folder", "score@smoke-image_folder-blurred",
        "score@smoke-image_folder-cropped", "score@smoke-image_folder-grey",
        "aggregate", "words", "plot", "report",
    }
    after = json.loads((project / "metrics" / "summary.json").read_text())
    assert after["smoke"]["sample"] == before["smoke"]["sample"]
    assert after["smoke"]["image_folder"] != before["smoke"]["image_folder"]
    # 5. and a photo deleted: the same stages again
    (folder / "astronaut" / "3.png").unlink()
    deleted = _repro(project, with_folder)
    assert deleted == replaced
    summary = json.loads((project / "metrics" / "summary.json").read_text())
    assert summary["smoke"]["image_folder"]["original"]["n_images"] == 11


def test_model_switch_back_runs_no_embedding(project: Path) -> None:
    """A -> B -> A through `dvc exp run -S`, DVC composing conf/ itself."""
    _run(["git", "add", "-A"], project)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], project)
    exp = ["dvc", "exp", "run", *[f"-S{o}" for o in BASE[1:]]]
    _run([*exp, "-Smodel=smoke"], project)
    to_b = set(RAN.findall(_run([*exp, "-Smodel=smoke-b"], project)))
    assert "embed@smoke-b-sample" in to_b
    back = _run([*exp, "-Smodel=smoke"], project)
    ran_back = set(RAN.findall(back))
    assert not {s for s in ran_back
                if s.startswith(("embed@", "manipulate@", "classifier@", "captions@"))}, back
    params = (project / "params.yaml").read_text()
    assert "smoke:" in params and "smoke-b:" not in params


def test_results_are_shared_through_a_dvc_remote(project: Path, tmp_path: Path) -> None:
    """README "Sharing results": commit, `dvc push` to a remote (a local folder here), clone,
    `dvc pull`: the clone has every output, `dvc exp show` a baseline with its metrics, and
    `dvc repro` recomputes nothing."""
    commit = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]
    remote = tmp_path / "dvc-remote"
    _run(["dvc", "remote", "add", "-d", "storage", str(remote)], project)
    _run(["git", "add", "-A"], project)
    _run([*commit, "results"], project)
    _run(["dvc", "push"], project)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data" / "embeddings").exists()
    _run(["dvc", "pull"], clone)
    for output in ("data/embeddings/smoke/sample/original.parquet",
                   "data/cells/smoke/sample/blurred/per_image.parquet",
                   "data/manifests/sample.parquet", "metrics/cells.csv"):
        assert (clone / output).read_bytes() == (project / output).read_bytes(), output
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], clone))
    baseline = next(entry for entry in shown if entry["rev"] != "workspace")  # the commit
    assert baseline["error"] is None
    metrics = baseline["data"]["metrics"]["metrics/summary.json"]["data"]
    assert metrics["smoke"]["sample"]["original"]["n_images"] == 12
    assert "seed001_accuracy-ci" in metrics["smoke"]["sample"]["blurred"]
    ran = set(RAN.findall(_run(["dvc", "repro"], clone)))
    # only the HTML report is re-rendered while it is an uncached output (plots/report.html)
    assert ran - {"report"} == {"scan"}, ran


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def test_report_renders_in_a_real_browser(project: Path, repo: Path) -> None:
    """The report of the smoke run, opened in headless Chromium: every image loads, no
    console error, and a screenshot is saved (build/report-screenshot.png)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (make test installs "
                    "Debian's chromium when it can)")
    playwright = pytest.importorskip("playwright.sync_api")
    _run(["cliprobe", "report"], project)
    report = project / "plots" / "report.html"
    text = report.read_text()
    assert "RANDOM WEIGHTS" in text and "seed001_accuracy" in text
    # self-contained: nothing is fetched when the page opens (URLs may appear as text)
    for external in ('src="http', "src='http", "<link", "<script src", "url(http"):
        assert external not in text.lower()
    screenshot = repo / "build" / "report-screenshot.png"
    screenshot.parent.mkdir(exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.resolve().as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert len(images) >= 4
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == []
    assert screenshot.stat().st_size > 10_000
