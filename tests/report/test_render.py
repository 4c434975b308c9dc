"""The report page rendered from a hand-made finished run (no pipeline): what is shown, what
is left out, and that every metric shown has its registry words beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cliprobe.metrics.registry import lookup
from cliprobe.report.collect import collect
from cliprobe.report.render import render


def _png(path: Path, side: int, noise: bool) -> None:
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 255, (side, side, 3)) if noise
              else np.full((side, side, 3), 200)).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A finished run of model M on one dataset with grey and a typographic cell."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    figures = tmp_path / "plots" / "figures"
    figures.mkdir(parents=True)
    rows = []
    values = {"original": (0.75, 0.90, None), "grey": (0.62, 0.88, None),
              "typographic": (0.40, 0.85, 0.35)}
    for x, (acc, recall, attack) in values.items():
        rows += [("M", "photos", x, "zeroshot_acc1", acc, acc - 0.04, acc + 0.04),
                 ("M", "photos", x, "recall_own_at_1", recall, recall - 0.05, recall + 0.05),
                 # acc@5 is undefined under 5 classes: an empty row in cells.csv
                 ("M", "photos", x, "zeroshot_acc5", None, None, None)]
        if attack is not None:
            rows.append(("M", "photos", x, "attack_success_rate", attack, 0.3, 0.4))
    cells = pd.DataFrame([(*r, 40, 0, True) for r in rows],
                         columns=["model", "dataset", "manipulation", "metric", "value",
                                  "ci_low", "ci_high", "n_images", "n_skipped",
                                  "random_weights"])
    cells.to_csv(tmp_path / "metrics" / "cells.csv", index=False)
    pd.DataFrame([
        {"model": "M", "dataset": "photos", "manipulation": "grey", "metric": "zeroshot_acc1",
         "difference": -0.13, "ci_low": -0.2, "ci_high": -0.06, "p_value": 0.002,
         "mcnemar_p": 0.003, "significant": True, "resampled": "images", "n": 40},
        {"model": "M", "dataset": "photos", "manipulation": "typographic",
         "metric": "zeroshot_acc1", "difference": -0.35, "ci_low": -0.45, "ci_high": -0.25,
         "p_value": 0.0001, "mcnemar_p": 0.0001, "significant": True, "resampled": "images",
         "n": 40},
    ]).to_csv(tmp_path / "metrics" / "comparisons.csv", index=False)
    # no corruption ran: the aggregate still writes the header-only table
    pd.DataFrame(columns=["model", "dataset", "corruption", "metric", "value"]).to_csv(
        tmp_path / "metrics" / "corruptions.csv", index=False)
    (tmp_path / "metrics" / "summary.json").write_text("{}")
    for x, function in (("original", None), ("grey", "greyscale"),
                        ("typographic", "typographic")):
        folder = tmp_path / "data" / "cells" / "M" / "photos" / x
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "cell": {"model": "M", "dataset": "photos", "manipulation": x,
                     "function": function, "params": {}},
            "provenance": {"model": "M", "arch": "cliprobe-smoke", "weights": "RANDOM WEIGHTS",
                           "precision": "fp32", "quick_gelu": False}}))
    _png(figures / "gallery_M_photos_typographic.png", 400, noise=True)  # large: JPEG
    _png(figures / "gallery_M_photos_grey.png", 20, noise=False)
    _png(figures / "heatmap_M.png", 20, noise=False)  # one dataset: not shown
    _png(figures / "class_bars_M_photos.png", 20, noise=False)
    (tmp_path / "params.yaml").write_text(
        "seed: 0\nstats:\n  bootstrap_resamples: 1000\n  confidence: 0.95\n"
        "retrieval:\n  neighbours: 10\n  index:\n    kind: exact\n")
    return tmp_path


def test_the_page_opens_on_the_answer_and_leaves_out_what_has_no_data(run_dir: Path) -> None:
    page = render(collect())
    answer = page.index('id="answer"')
    assert answer < page.index('id="details"') < page.index('id="provenance"')
    first = page[answer:page.index('id="details"')]
    # typographic hurts most: first in the answer, with its attack success and gallery
    assert first.index('data-manipulation="typographic"') < first.index(
        'data-manipulation="grey"')
    assert "−35.0 pt [−45.0, −25.0]" in first and "significant" in first
    assert "35.0% [30.0, 40.0]" in first and "gallery_M_photos_typographic.png" in first
    # the large gallery travels as JPEG, the small figures as PNG
    assert re.search(r'alt="gallery_M_photos_typographic.png"[^>]*src="data:image/jpeg', first)
    assert 'src="data:image/png;base64' in page
    # left out: the empty corruption table, the one-row heatmap, empty estimates
    assert "corruptions.csv" not in page and "heatmap_M.png" not in page
    assert "– [–, –]" not in page and "[–, –]" not in page
    assert "More tables" not in page and "Corruption errors" not in page
    # provenance as nested lists, never a printed Python dict
    assert "{'" not in page and '<span class="k">retrieval</span>' in page
    assert '<span class="k">kind</span>: exact' in page


def test_every_metric_shown_has_its_description_in_a_tooltip(run_dir: Path) -> None:
    page = render(collect())
    shown = set(re.findall(r'data-metric="([^"]+)"', page))
    assert shown == {"zeroshot_acc1", "recall_own_at_1", "attack_success_rate"}
    for name in shown:
        info = lookup(name)
        assert info is not None
        assert info.description.replace("'", "&#39;") in page
        assert f'id="metric-{name}"' in page  # its glossary entry
    # the table: grouped by family, typographic under its own column group
    assert ">Zero-shot classification</th>" in page and ">written words</th>" in page
    assert 'class="worse"' in page  # grey's significant drop is coloured


def test_the_page_is_self_contained(run_dir: Path) -> None:
    page = render(collect())
    assert not re.search(r'<(script|img|link)[^>]+(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page
    # the change chart: a Vega-Lite spec inlined beside the vega-embed bundle
    specs = re.findall(r'<script type="application/json" id="(chart-\d+)-spec">(.*?)</script>',
                       page, re.S)
    assert specs and json.loads(specs[0][1])["layer"]
    assert "vegaEmbed" in page and "$schema" not in specs[0][1]


def test_the_words_stage_shows_in_its_pair_section(run_dir: Path) -> None:
    """The object × written word matrix as an interactive chart, the saliency and proximity
    numbers as tables in their units, their figures in the pair's section, not at the end."""
    figures = run_dir / "plots" / "figures"
    pd.DataFrame({
        "model": "M", "dataset": "photos", "manipulation": "typographic",
        "object": ["apple", "apple", "dog"], "word": [None, "ipod", "ipod"],
        "condition": ["clean", "attack", "attack"], "n_images": [2, 2, 1],
        "p_object": [0.9, 0.3, 0.4], "p_word": [0.02, 0.6, 0.5],
        "attack_success": [float("nan"), 0.5, 1.0], "acc1": [1.0, 0.5, 0.0],
        "text_cosine": [float("nan"), 0.61, 0.55]}).to_csv(
        run_dir / "plots" / "word_pairs.csv", index=False)
    pd.DataFrame([{"model": "M", "dataset": "photos", "manipulation": "typographic",
                   "measure": "text_cosine", "outcome": "p_word", "rho": 0.42, "ci_low": 0.1,
                   "ci_high": 0.7, "p_value": 0.03, "n_pairs": 9, "resamples": 100,
                   "confidence": 0.95, "source": "cliprobe-test"}]).to_csv(
        run_dir / "metrics" / "proximity.csv", index=False)
    pd.DataFrame([{"model": "M", "dataset": "photos", "manipulation": "typographic",
                   "method": "gradcam", "view": "attacked", "statistic": s, "value": v,
                   "ci_low": v - 0.1, "ci_high": v + 0.1, "n": 5, "box_fraction": 0.2}
                  for s, v in (("mass_in_box_word", 0.5), ("mass_in_box_object", 0.25))]).to_csv(
        run_dir / "metrics" / "saliency.csv", index=False)
    for name in ("typographic_matrix_M_photos_typographic.png", "proximity_M_photos.png",
                 "saliency_M_photos_typographic.png"):
        _png(figures / name, 20, noise=False)
    page = render(collect())
    details = page[page.index('id="details"'):page.index('id="glossary"')]
    pair = details[:details.index('id="more-tables"')] if 'id="more-tables"' in details \
        else details
    # the matrix is a chart with its PNG named beside it, not repeated as an image
    assert "<h4>Object × written word · typographic</h4>" in pair
    assert "figures/typographic_matrix_M_photos_typographic.png" in pair
    assert 'alt="typographic_matrix_M_photos_typographic.png"' not in page
    specs = re.findall(r'<script type="application/json" id="chart-\d+-spec">(.*?)</script>',
                       page, re.S)
    assert any('"p_word_pct"' in spec for spec in specs)
    # the saliency and proximity figures sit in the pair's section
    for name in ("proximity_M_photos.png", "saliency_M_photos_typographic.png"):
        assert f'alt="{name}"' in pair
    # their numbers in the registry's units with intervals, names explained on hover
    assert "Where the model looks: share of saliency mass" in pair
    assert "<td>typographic · gradcam · attacked</td>" in pair
    assert "50.0% <small>[40.0, 60.0]</small>" in pair
    assert "<td>typographic · p_word</td>" in pair and "0.42 <small>[0.10, 0.70]</small>" in pair
    for name in ("mass_in_box_word", "mass_in_box_object", "text_cosine"):
        assert f'data-metric="{name}"' in pair and f'id="metric-{name}"' in page


def test_a_model_on_two_datasets_gets_interactive_dataset_by_manipulation_grids(
        run_dir: Path) -> None:
    cells = pd.read_csv(run_dir / "metrics" / "cells.csv")
    second = cells[cells["manipulation"] != "typographic"].assign(dataset="cifar")
    pd.concat([cells, second]).to_csv(run_dir / "metrics" / "cells.csv", index=False)
    page = render(collect())
    across = page[page.index('id="across"'):page.index('id="glossary"')]
    # one grid per heatmap metric present, the plot stage's PNG named, not inlined again
    assert "<h4>M: own-image recall@1</h4>" in across and "<h4>M: zero-shot top-1</h4>" in across
    assert "figures/heatmap_M.png" in across and 'alt="heatmap_M.png"' not in page
    specs = dict(re.findall(r'<script type="application/json" id="(chart-\d+)-spec">(.*?)'
                            r"</script>", page, re.S))
    assert len(specs) == len(set(specs))  # ids numbered once across the page
    grids = [rows for s in specs.values() if "cifar" in s
             for rows in json.loads(s)["datasets"].values()]
    assert len(grids) == 2  # own-image recall@1, zero-shot top-1 (attacks: one dataset)
    top1 = next(rows for rows in grids if rows[0]["estimate"] == "75.0% [71.0, 79.0]")
    assert {(r["dataset"], r["manipulation"]) for r in top1} == {
        (d, x) for d in ("photos", "cifar") for x in ("original", "grey", "typographic")
    } - {("cifar", "typographic")}
