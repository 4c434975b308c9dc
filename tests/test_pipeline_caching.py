"""End to end: the real DVC pipeline with the smoke model, and the caching guarantees.

1. a second `dvc repro` runs no stage but the scan of local inputs (always run, cheap);
2. changing one manipulation's parameter re-runs only that manipulation's cells (and the
   aggregate / plot stages), never the clean embeddings;
3. a setting no stage's outputs depend on (a kNN timeout, a parameter of an unused index)
   re-runs no cell;
4. adding a dataset runs only its cells;
   and replacing one photo of that (user's) folder re-runs exactly that dataset's stages;
5. model A -> B -> A through `dvc exp run -S` (DVC's own Hydra composition): the return to A
   runs no embedding, and `dvc exp apply` of B brings back B's report and figures.
"""

from __future__ import annotations

import json
import re
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
        "scan", "split_params", "fetch@sample", "embed@smoke-sample",
        "manipulate@smoke-sample-blurred",
        "manipulate@smoke-sample-cropped", "manipulate@smoke-sample-grey",
        "classifier@smoke-sample", "captions@smoke-sample", "score_original@smoke-sample",
        "score@smoke-sample-blurred", "score@smoke-sample-cropped", "score@smoke-sample-grey",
        "aggregate", "words", "plot", "report",
    }  # no saliency stage: saliency.cells is empty by default
    summary = json.loads((project / "metrics" / "summary.json").read_text())
    assert set(summary["smoke"]["sample"]) == {"original", "blurred", "cropped", "grey"}
    assert summary["smoke"]["sample"]["original"]["n_images"] == 12
    figures = sorted(p.name for p in (project / "plots" / "figures").glob("*.png"))
    assert figures == ["box_smoke_sample.png", "change_smoke_sample.png",
                       "class_bars_smoke_sample.png",
                       "gallery_smoke_sample_blurred.png", "gallery_smoke_sample_cropped.png",
                       "gallery_smoke_sample_grey.png", "heatmap_smoke.png",
                       "hist_smoke_sample.png"]
    table = (project / "metrics" / "seed001_table.csv").read_text().splitlines()
    assert table[0] == "model,dataset,original,blurred,cropped,grey"
    # the literature linear probe needs an official train split, which `sample` has not: the
    # fetch stage writes an empty train-split manifest saying so, and every cell records why
    from cliprobe.datasets.manifest import read_manifest

    train, train_info = read_manifest(project / "data/manifests/sample.train_split.parquet")
    assert train.empty and "no official train split" in train_info["probe_train"]
    cells = project / "data" / "cells" / "smoke" / "sample"
    for cell in ("original", "grey"):
        record = json.loads((cells / cell / "metrics.json").read_text())
        assert "no official train split" in record["probe_official"]["skipped"]
        assert "probe_official_accuracy" not in record["metrics"]

    # 1. nothing changed: nothing runs (the scan finds the same listing)
    assert _repro(project, BASE) == {"scan"}

    # 2. one manipulation's parameter: only its cells, plus aggregate and plot
    changed = _repro(project, [*BASE, "manipulation.blurred.sigma=1.5"])
    assert changed == {"scan", "split_params", "manipulate@smoke-sample-blurred",
                       "score@smoke-sample-blurred", "aggregate", "words", "plot", "report"}

    # 3. settings that cannot change any output: only the params split runs
    for unused in ("retrieval.remote.timeout_s=5", "retrieval.index.nlist=7"):
        assert _repro(project, [*BASE, "manipulation.blurred.sigma=1.5", unused]) == {
            "scan", "split_params"}, unused

    # 4. a new dataset: only its cells (and the aggregate / plot)
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
        "scan", "split_params", "fetch@image_folder", "embed@smoke-image_folder",
        "manipulate@smoke-image_folder-blurred", "manipulate@smoke-image_folder-cropped",
        "manipulate@smoke-image_folder-grey", "classifier@smoke-image_folder",
        "captions@smoke-image_folder",
        "score_original@smoke-image_folder", "score@smoke-image_folder-blurred",
        "score@smoke-image_folder-cropped", "score@smoke-image_folder-grey",
        "aggregate", "words", "plot", "report",
    }
    before = json.loads((project / "metrics" / "summary.json").read_text())

    # one photo of the user's folder replaced under the same name: that dataset's stages
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
    # (a deleted photo changes the listing the same way: tests/test_scan_stage.py)


EXPERIMENT = re.compile(r"Ran experiment\(s\): (\S+)")


def test_model_switch_back_runs_no_embedding(project: Path) -> None:
    """A -> B -> A through `dvc exp run -S`, DVC composing conf/ itself; then `dvc exp apply`
    of B restores B's report and figures (outputs DVC caches, not files left behind)."""
    _run(["git", "add", "-A"], project)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], project)
    exp = ["dvc", "exp", "run", *[f"-S{o}" for o in BASE[1:]]]
    _run([*exp, "-Smodel=smoke"], project)
    output_b = _run([*exp, "-Smodel=smoke-b"], project)
    assert "embed@smoke-b-sample" in set(RAN.findall(output_b))
    report_b = (project / "plots" / "report.html").read_text()
    assert "smoke-b" in report_b
    back = _run([*exp, "-Smodel=smoke"], project)
    ran_back = set(RAN.findall(back))
    assert not {s for s in ran_back
                if s.startswith(("embed@", "manipulate@", "classifier@", "captions@"))}, back
    params = (project / "params.yaml").read_text()
    assert "smoke:" in params and "smoke-b:" not in params
    assert "smoke-b" not in (project / "plots" / "report.html").read_text()

    (name_b,) = EXPERIMENT.findall(output_b)
    _run(["dvc", "exp", "apply", name_b], project)
    assert (project / "plots" / "report.html").read_text() == report_b
    figures = {p.name for p in (project / "plots" / "figures").glob("*.png")}
    assert "heatmap_smoke-b.png" in figures and "heatmap_smoke.png" not in figures
    (name_a,) = EXPERIMENT.findall(back)  # and back to A for the tests that follow
    _run(["dvc", "exp", "apply", name_a], project)
    assert "smoke-b" not in (project / "plots" / "report.html").read_text()


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
                   "data/manifests/sample.parquet", "metrics/cells.csv", "plots/report.html"):
        assert (clone / output).read_bytes() == (project / output).read_bytes(), output
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], clone))
    baseline = next(entry for entry in shown if entry["rev"] != "workspace")  # the commit
    assert baseline["error"] is None
    metrics = baseline["data"]["metrics"]["metrics/summary.json"]["data"]
    assert metrics["smoke"]["sample"]["original"]["n_images"] == 12
    assert "seed001_accuracy-ci" in metrics["smoke"]["sample"]["blurred"]
    ran = set(RAN.findall(_run(["dvc", "repro"], clone)))
    assert ran == {"scan"}, ran  # the HTML report is a cached output: pulled, not re-rendered


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


#: The report of the smoke run must stay light enough to mail and open anywhere.
MAX_REPORT_BYTES = 5 * 1024 * 1024


def test_report_renders_in_a_real_browser(project: Path, repo: Path) -> None:
    """The report of the smoke run, used in headless Chromium as a reader would: it opens with
    no console error and no request leaving the file, every image loads, a table sorts by a
    column, a metric's name shows its description on hover, a gallery image opens full size,
    the interactive chart draws; screenshots of the top of the page and of the chart go to
    build/ (copies in docs/ for the README). The page stays under 5 MB."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (make test installs "
                    "Debian's chromium when it can)")
    playwright = pytest.importorskip("playwright.sync_api")
    from cliprobe.metrics.registry import lookup, unregistered

    _run(["cliprobe", "report"], project)
    report = project / "plots" / "report.html"
    text = report.read_text()
    assert "RANDOM WEIGHTS" in text and "seed001_accuracy" in text
    assert report.stat().st_size < MAX_REPORT_BYTES, report.stat().st_size
    # every metric the run emitted has a registry entry (the names come from the run)
    cells = (project / "metrics" / "cells.csv").read_text().splitlines()
    header = cells[0].split(",")
    metrics = {line.split(",")[header.index("metric")] for line in cells[1:]}
    assert metrics and unregistered(metrics) == []
    build = repo / "build"
    build.mkdir(exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith(("file:", "data:", "about:", "blob:")) else None)
        page.goto(report.resolve().as_uri())
        page.wait_for_selector("div.vega[data-rendered=true]", timeout=60_000)
        images = page.evaluate("Array.from(document.images).filter(i => !i.closest('dialog'))"
                               ".map(i => [i.alt, i.complete, i.naturalWidth])")
        page.screenshot(path=str(build / "report-top.png"))

        # sort the first table by the 'grey' column: ascending, then descending
        table = page.locator("table.metrics").first
        header_cell = table.locator("thead th[data-col='grey']")
        column = int(header_cell.get_attribute("data-sort"))

        def column_values() -> list[list[float]]:
            return page.evaluate(
                """([id, column]) => Array.from(document.getElementById(id).tBodies).map(b =>
                     Array.from(b.rows).filter(r => !r.classList.contains('family'))
                       .map(r => parseFloat(r.children[column].getAttribute('data-value'))))""",
                [table.get_attribute("id"), column])

        header_cell.click()
        for values in column_values():
            finite = [v for v in values if v == v]
            assert finite == sorted(finite) and values[: len(finite)] == finite, values
        header_cell.click()
        for values in column_values():
            finite = [v for v in values if v == v]
            assert finite == sorted(finite, reverse=True), values
        assert header_cell.get_attribute("aria-sort") == "descending"

        # filter rows by metric name and columns by manipulation name, then clear both
        table_id = table.get_attribute("id")
        rows_filter = page.locator(f"input[data-filter-rows='{table_id}']")
        columns_filter = page.locator(f"input[data-filter-cols='{table_id}']")
        every_column = table.locator("thead th[data-col]:visible").count()
        rows_filter.fill("recall")
        shown_rows = table.locator("tbody tr[data-search]:visible")
        assert shown_rows.count() > 0
        assert all("recall" in (s or "").lower() for s in shown_rows.evaluate_all(
            "rows => rows.map(r => r.getAttribute('data-search'))"))
        columns_filter.fill("grey")
        shown_columns = table.locator("thead th[data-col]:visible").evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-col'))")
        assert shown_columns == ["original", "grey"], shown_columns  # original always stays
        rows_filter.fill("")
        columns_filter.fill("")
        assert table.locator("thead th[data-col]:visible").count() == every_column

        # hover a metric's name: its registry description appears
        name = page.locator(".metric[data-metric='recall_own_at_1']").first
        name.scroll_into_view_if_needed()
        name.hover()
        tip = page.locator("#metric-tip")
        assert tip.is_visible()
        assert lookup("recall_own_at_1").description in tip.inner_text()  # type: ignore[union-attr]
        page.mouse.move(0, 0)
        assert not tip.is_visible()

        # a gallery image opens full size, and closes with Escape
        thumbnail = page.locator("figure img.zoomable").first
        thumbnail.scroll_into_view_if_needed()
        shown_width = thumbnail.evaluate("i => i.getBoundingClientRect().width")
        thumbnail.click()
        big = page.locator("dialog#lightbox[open] img")
        big.wait_for()
        natural = thumbnail.evaluate("i => i.naturalWidth")
        assert big.evaluate("i => i.naturalWidth") == natural
        assert big.evaluate("i => i.getBoundingClientRect().width") > shown_width
        page.keyboard.press("Escape")
        assert page.locator("dialog#lightbox[open]").count() == 0

        # the interactive chart: a tooltip on hover, and its screenshot
        chart = page.locator("div.vega[data-rendered=true]").first
        chart.scroll_into_view_if_needed()
        labels = chart.locator("svg g.mark-text text")  # drawn over the cells, same tooltip
        significant = labels.filter(has_text="*")
        (significant if significant.count() else labels).first.hover()
        page.wait_for_selector("#vg-tooltip-element.visible", timeout=10_000)
        box = chart.locator("xpath=..").evaluate(  # the chart with its title and caption
            "e => { const r = e.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }")
        page.screenshot(path=str(build / "report-chart.png"), full_page=True, clip={
            "x": max(box["x"] - 10, 0), "y": max(box["y"] - 10, 0),
            "width": min(max(box["width"], 820) + 20, 1270), "height": box["height"] + 20})
        browser.close()
    assert len(images) >= 4
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == [] and outside == []
    for name in ("report-top.png", "report-chart.png"):
        assert (build / name).stat().st_size > 10_000
