"""What the score stage records about the images a cell does not score."""

from __future__ import annotations

from cliprobe.stages.score import skip_counts


def test_declined_images_are_counted_apart_from_unreadable_ones() -> None:
    gallery = {"n_images": 8, "n_skipped": 2,
               "skipped": [{"image_id": "broken.jpg", "reason": "truncated",
                            "kind": "unreadable"},
                           {"image_id": "empty.png", "reason": "empty file"}]}
    queries = {"skipped": [{"image_id": "broken.jpg", "reason": "truncated",
                            "kind": "unreadable"},
                           {"image_id": "empty.png", "reason": "empty file"},
                           {"image_id": "tiny.png", "kind": "not_applicable",
                            "reason": "manipulation not applicable: too small"}]}
    counts = skip_counts(gallery, queries, n_scored=7)
    assert counts == {"n_skipped": 2, "skipped": ["broken.jpg", "empty.png"],
                      "n_not_applicable": 1, "not_applicable": ["tiny.png"]}
    assert 7 + counts["n_skipped"] + counts["n_not_applicable"] == 10
