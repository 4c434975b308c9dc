"""The ``url_list`` source: concurrent downloads, a failing URL counted and listed, caching."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dataset_helpers import Server, png_bytes, sha256

from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.sources import materialise
from cliprobe.datasets.sources.url_list import image_id_for
from cliprobe.errors import DataError


def _write_list(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _config(csv: Path, tmp_path: Path, **source: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"source": {
        "kind": "url_list", "csv": str(csv), "cache_dir": str(tmp_path / "cache"), "timeout": 5,
        "retries": 2, **source}})


def test_one_failing_url_is_counted_and_listed_not_fatal(http_server: Server,
                                                         tmp_path: Path) -> None:
    rows_in = []
    for i in range(6):
        (http_server.root / f"img{i}.png").write_bytes(png_bytes(i))
        rows_in.append({"url": f"{http_server.url}/img{i}.png", "label": "cat" if i < 3 else "dog",
                        "sha256": sha256(png_bytes(i)) if i == 0 else ""})
    rows_in.append({"url": f"{http_server.url}/gone.png", "label": "dog", "sha256": ""})
    listing = _write_list(tmp_path / "urls.csv", rows_in)
    http_server.delay = 0.05
    rows, info = materialise(_config(listing, tmp_path, concurrency=2), "web", tmp_path / "raw")
    assert len(rows) == 6 and info["n_listed"] == 7 and info["n_failed"] == 1
    assert info["failed"] == [{"url": f"{http_server.url}/gone.png", "label": "dog",
                               "reason": "HTTP 404 Not Found"}]
    assert http_server.max_active <= 2 and http_server.served("gone.png") == 1  # 404: no retry
    first = rows.iloc[0]
    assert first["image_id"] == image_id_for(first["url"]) and first["image_id"].endswith(".png")
    assert (tmp_path / "raw" / first["image_id"]).is_file()

    http_server.requests.clear()
    again, _ = materialise(_config(listing, tmp_path), "web", tmp_path / "raw2")
    assert again.equals(rows) and [p for p, _ in http_server.requests] == ["/gone.png"]


def test_every_url_failing_is_an_error(http_server: Server, tmp_path: Path) -> None:
    listing = _write_list(tmp_path / "urls.csv",
                          [{"url": f"{http_server.url}/a.jpg", "label": "x"},
                           {"url": f"{http_server.url}/b.jpg", "label": "y"}])
    with pytest.raises(DataError) as error:
        materialise(_config(listing, tmp_path), "web", tmp_path / "raw")
    message = str(error.value)
    assert message.startswith("dataset 'web': none of the 2 listed images could be had")
    assert "dataset.web.source.local_dir" in message


def test_local_dir_and_bad_lists(tmp_path: Path) -> None:
    folder = tmp_path / "have"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(png_bytes(1))
    listing = _write_list(tmp_path / "urls.csv",
                          [{"url": "https://example.org/pics/a.jpg", "label": "x"},
                           {"url": "https://example.org/pics/b.jpg", "label": "y"}])
    rows, info = materialise(_config(listing, tmp_path, local_dir=str(folder)), "web",
                             tmp_path / "raw")
    assert rows["label"].tolist() == ["x"] and info["n_failed"] == 1
    bad = _write_list(tmp_path / "bad.csv", [{"link": "https://x/y.jpg", "label": "x"}])
    with pytest.raises(DataError, match="lacks the column"):
        materialise(_config(bad, tmp_path), "web", tmp_path / "raw2")
