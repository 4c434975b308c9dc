"""The per model × dataset table: metrics as rows by family, manipulations as columns by kind,
``value [interval]`` with the significance mark, coloured by the metric's better direction,
with what the page's script needs to sort and filter it."""

from __future__ import annotations

import re

import pandas as pd

from cliprobe.metrics.changes import change_table
from cliprobe.metrics.registry import describe
from cliprobe.report.tables import GROUP_SEPARATOR, estimate_table, metric_table, plain_table


def _table() -> str:
    rows = [("original", "recall_own_at_10", 0.95), ("original", "recall_own_at_1", 0.9),
            ("original", "zeroshot_acc1", 0.8), ("original", "attack_success_rate", 0.3),
            ("original", "zeroshot_acc5", None),
            ("grey", "recall_own_at_10", 0.94), ("grey", "recall_own_at_1", 0.85),
            ("grey", "zeroshot_acc1", 0.7), ("grey", "attack_success_rate", 0.1),
            ("grey", "zeroshot_acc5", None),
            ("typographic", "zeroshot_acc1", 0.4)]
    cells = pd.DataFrame([("M", "d", x, m, v, None if v is None else v - 0.05,
                           None if v is None else v + 0.05, 40) for x, m, v in rows],
                         columns=["model", "dataset", "manipulation", "metric", "value",
                                  "ci_low", "ci_high", "n_images"])
    comparisons = pd.DataFrame([
        {"model": "M", "dataset": "d", "manipulation": "grey", "metric": metric,
         "difference": d, "ci_low": d - 0.04, "ci_high": d + 0.04, "p_value": p,
         "mcnemar_p": float("nan"), "significant": p < 0.05}
        for metric, d, p in [("zeroshot_acc1", -0.1, 0.01), ("attack_success_rate", -0.2, 0.001),
                             ("recall_own_at_1", -0.05, 0.2)]])
    columns = [("original", "reference"), ("grey", "seed 001: blur, crop, grey"),
               ("typographic", "written words")]
    return metric_table("t0", cells, change_table(cells, comparisons), columns)


def _row(page: str, metric: str) -> str:
    match = re.search(rf'<tr data-search="[^"]*"><th class="name" scope="row">'
                      rf'<span class="metric" tabindex="0" data-metric="{metric}">.*?</tr>',
                      page)
    assert match is not None, metric
    return match[0]


def test_rows_are_grouped_by_family_in_registry_order_and_empty_rows_left_out() -> None:
    page = _table()
    shown = re.findall(r'<tr data-search[^>]*><th class="name" scope="row"><span class="metric" '
                       r'tabindex="0" data-metric="([^"]+)"', page)
    # zero-shot, then attacks, then image retrieval; recall@1 before @10 (numeric order);
    # top-5, empty everywhere (fewer than 5 classes), has no row
    assert shown == ["zeroshot_acc1", "attack_success_rate", "recall_own_at_1",
                     "recall_own_at_10"]
    families = re.findall(r'<tr class="family"><th colspan="4">([^<]+)</th>', page)
    assert families == ["Zero-shot classification", "Typographic attacks", "Image retrieval"]


def test_cells_state_value_interval_mark_and_colour_by_direction() -> None:
    page = _table()
    top1 = _row(page, "zeroshot_acc1")
    assert '<td data-col="original" data-value="0.8" class="ref">80.0% ' \
           '<small>[75.0, 85.0]</small></td>' in top1
    grey = re.search(r'<td data-col="grey"[^>]*>.*?</td>', top1)[0]  # type: ignore[index]
    assert 'class="worse"' in grey and '<span class="sig">*</span>' in grey
    assert "−10.0 pt against original [−14.0, −6.0], paired bootstrap p = 0.01" in grey
    # lower is better: the attack succeeding less often is coloured better
    attack = _row(page, "attack_success_rate")
    assert re.search(r'data-col="grey" data-value="0.1" class="better"', attack)
    # a not significant change: its numbers in the title, no colour, no mark
    recall = _row(page, "recall_own_at_1")
    grey = re.search(r'<td data-col="grey"[^>]*>.*?</td>', recall)[0]  # type: ignore[index]
    assert "class=" not in grey and "sig" not in grey and "p = 0.2" in grey
    # a metric the cell lacks: a dash, no empty interval, sorted last (empty data-value)
    assert '<td data-col="typographic" data-value="">–</td>' in recall
    assert "[–, –]" not in page and "nan" not in page.lower()


def test_headers_sort_and_the_page_can_filter_rows_and_columns() -> None:
    page = _table()
    heads = re.findall(r'<th data-col="([^"]+)" data-sort="(\d+)"', page)
    assert heads == [("original", "1"), ("grey", "2"), ("typographic", "3")]
    assert '<th data-col="original" data-sort="1" data-keep>' in page  # never filtered away
    assert 'data-filter-rows="t0"' in page and 'data-filter-cols="t0"' in page
    assert 'data-group="grey">seed 001: blur, crop, grey</th>' in page
    assert GROUP_SEPARATOR not in page.split('data-group="', 1)[1].split('"')[0]
    # rows are found by label, code name and family
    assert 'data-search="zero-shot top-1 zeroshot_acc1 Zero-shot classification"' in page
    # the name carries its registry entry for the hover tooltip
    assert "Share of images whose highest-scoring class prompt is their true class." in page


def test_plain_and_estimate_tables_state_numbers_and_sort_keys() -> None:
    frame = pd.DataFrame({"measure": ["text_cosine", "wordnet_wup"], "rho": [0.51234, None],
                          "significant": [True, False]})
    page = plain_table("x", frame)
    assert '<td data-value="0.51234">0.5123</td>' in page and '<td data-value="">–</td>' in page
    assert "<td>True</td>" in page  # booleans are words, not numbers
    page = estimate_table("ce", "corruption", [
        ("fog", {"ce": {"value": 0.85, "ci_low": 0.8, "ci_high": 0.9}, "relative_ce": None})],
        {"ce": describe("ce"), "relative_ce": describe("relative_ce")})
    assert '<td data-value="0.85">85.0% <small>[80.0, 90.0]</small></td>' in page
    assert '<td data-value="">–</td>' in page and 'data-metric="relative_ce"' in page
