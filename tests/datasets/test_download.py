"""The download layer: checksums, resume, cache hits, retries, concurrency, offline, extraction."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from dataset_helpers import Server, make_tar_gz, make_zip, png_bytes, sha256

from cliprobe.datasets import download
from cliprobe.datasets.download import (
    DownloadError,
    Job,
    UnsafeArchive,
    cache_root,
    download_many,
    extract_archive,
    resolve_url,
)
from cliprobe.errors import DataError

PAYLOAD = b"".join(png_bytes(i, 16) for i in range(20))  # some kB, distinct bytes


def _publish(server: Server, name: str, data: bytes) -> str:
    (server.root / name).write_bytes(data)
    return f"{server.url}/{name}"


def test_download_verifies_and_a_second_call_sends_no_request(http_server: Server,
                                                              tmp_path: Path) -> None:
    url = _publish(http_server, "blob.bin", PAYLOAD)
    target = tmp_path / "cache" / "blob.bin"
    first = download.download(url, target, sha256=sha256(PAYLOAD), timeout=5)
    assert first.path.read_bytes() == PAYLOAD and first.pinned
    assert http_server.served("blob.bin") == 1
    http_server.requests.clear()
    again = download.download(url, target, sha256=sha256(PAYLOAD), timeout=5)
    assert again.sha256 == sha256(PAYLOAD) and http_server.requests == []
    assert not list(target.parent.glob("*.part"))


def test_an_interrupted_download_resumes_with_a_range_request(http_server: Server,
                                                              tmp_path: Path) -> None:
    url = _publish(http_server, "big.bin", PAYLOAD)
    http_server.truncate_once.add("/big.bin")
    target = tmp_path / "cache" / "big.bin"
    got = download.download(url, target, sha256=sha256(PAYLOAD), timeout=5, retries=3)
    assert got.path.read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]
    http_server.idle()
    assert http_server.bytes_sent == len(PAYLOAD)  # the second request sent only the rest


def test_a_part_file_left_by_a_killed_process_is_resumed(http_server: Server,
                                                         tmp_path: Path) -> None:
    url = _publish(http_server, "big.bin", PAYLOAD)
    target = tmp_path / "cache" / "big.bin"
    target.parent.mkdir()
    (target.parent / "big.bin.part").write_bytes(PAYLOAD[:1000])
    download.download(url, target, sha256=sha256(PAYLOAD), timeout=5)
    assert target.read_bytes() == PAYLOAD
    assert http_server.requests == [("/big.bin", "bytes=1000-")]


def test_wrong_bytes_are_retried_then_refused_and_never_kept(http_server: Server,
                                                             tmp_path: Path) -> None:
    url = _publish(http_server, "blob.bin", b"not what was pinned")
    target = tmp_path / "cache" / "blob.bin"
    with pytest.raises(DownloadError) as error:
        download.download(url, target, sha256=sha256(PAYLOAD), timeout=5, retries=2)
    assert error.value.checksum and "sha256" in error.value.reason
    assert http_server.served("blob.bin") == 2
    assert not target.exists() and not list(target.parent.glob("*.part"))


def test_md5_pins_are_checked_too(http_server: Server, tmp_path: Path) -> None:
    import hashlib

    url = _publish(http_server, "blob.bin", PAYLOAD)
    good = hashlib.md5(PAYLOAD).hexdigest()
    assert download.download(url, tmp_path / "a" / "b", md5=good, timeout=5).md5 == good
    with pytest.raises(DownloadError, match="md5"):
        download.download(url, tmp_path / "c" / "b", md5="0" * 32, timeout=5, retries=1)


def test_without_a_pin_the_first_sha256_is_recorded_and_enforced(http_server: Server,
                                                                 tmp_path: Path) -> None:
    url = _publish(http_server, "blob.bin", PAYLOAD)
    target = tmp_path / "cache" / "blob.bin"
    first = download.download(url, target, timeout=5)
    assert not first.pinned and first.sha256 == sha256(PAYLOAD)
    target.write_bytes(b"corrupted in the cache")  # -> downloaded again, same bytes: fine
    assert download.download(url, target, timeout=5).sha256 == sha256(PAYLOAD)
    (http_server.root / "blob.bin").write_bytes(b"changed upstream")
    target.unlink()
    with pytest.raises(DownloadError, match="first download"):
        download.download(url, target, timeout=5, retries=1)


def test_a_404_is_not_retried_and_offline_never_connects(http_server: Server, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.download(f"{http_server.url}/missing.bin", tmp_path / "m", timeout=5)
    assert http_server.served("missing.bin") == 1
    http_server.fail["/flaky.bin"] = 503
    with pytest.raises(DownloadError, match="HTTP 503"):
        download.download(f"{http_server.url}/flaky.bin", tmp_path / "f", timeout=5, retries=3)
    assert http_server.served("flaky.bin") == 3
    monkeypatch.setenv("CLIPROBE_OFFLINE", "1")
    http_server.requests.clear()
    with pytest.raises(DownloadError, match="CLIPROBE_OFFLINE=1"):
        download.download(_publish(http_server, "x.bin", b"x"), tmp_path / "x", timeout=5)
    assert http_server.requests == []


def test_a_web_page_instead_of_the_file_is_refused(http_server: Server, tmp_path: Path) -> None:
    url = _publish(http_server, "archive.tar.gz", b"<html>quota exceeded</html>")
    http_server.content_type["/archive.tar.gz"] = "text/html; charset=utf-8"
    with pytest.raises(DownloadError, match="web page"):
        download.download(url, tmp_path / "a.tar.gz", timeout=5, retries=1)
    assert not (tmp_path / "a.tar.gz").exists()


def test_fetch_file_errors_are_one_sentence_naming_dataset_and_local_dir(
        http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        download.fetch_file("places", "the archive data.tar.gz", f"{http_server.url}/nope.tgz",
                            tmp_path / "nope.tgz", timeout=5)
    message = str(error.value)
    assert message.startswith("dataset 'places'") and "data.tar.gz" in message
    assert "dataset.places.source.local_dir" in message and ". " not in message


def test_download_many_bounds_concurrency_and_reports_failures(http_server: Server,
                                                               tmp_path: Path) -> None:
    http_server.delay = 0.05
    jobs = [Job(_publish(http_server, f"f{i}.png", png_bytes(i)), tmp_path / "c" / f"f{i}.png")
            for i in range(8)]
    jobs.append(Job(f"{http_server.url}/gone.png", tmp_path / "c" / "gone.png"))
    results = download_many(jobs, max_workers=3, timeout=5, retries=1)
    assert [isinstance(r, DownloadError) for r in results] == [False] * 8 + [True]
    http_server.idle()
    assert 1 < http_server.max_active <= 3


def test_cache_root_and_gdrive_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_root(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.setenv("CLIPROBE_DATA_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    monkeypatch.delenv("CLIPROBE_DATA_CACHE")
    assert cache_root().name == "cliprobe"
    assert resolve_url("gdrive:1CyIQOJienhNITwGcQ9h-nv8z6GOjV2HX").endswith(
        "id=1CyIQOJienhNITwGcQ9h-nv8z6GOjV2HX")
    assert resolve_url("https://x/y.tgz") == "https://x/y.tgz"


# --- extraction -------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [make_tar_gz, make_zip])
def test_archives_extract_once(maker, tmp_path: Path) -> None:
    archive = maker(tmp_path / ("a.tar.gz" if maker is make_tar_gz else "a.zip"),
                    {"top/cat/1.png": png_bytes(1), "top/dog/2.png": png_bytes(2)})
    out = extract_archive(archive, tmp_path / "out", dataset="d")
    assert (out / "top" / "cat" / "1.png").read_bytes() == png_bytes(1)
    marker = out / download.EXTRACTED_MARKER
    stamp = marker.stat().st_mtime_ns
    assert extract_archive(archive, tmp_path / "out", dataset="d") == out
    assert marker.stat().st_mtime_ns == stamp  # not extracted again


def _tar_with(path: Path, members: list[tarfile.TarInfo], data: bytes = b"evil") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_file("ok/fine.txt", b"fine"), io.BytesIO(b"fine"))
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _file(name: str, data: bytes = b"evil") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(("member", "problem"), [
    (_file("../escape.txt"), "outside the extraction folder"),
    (_file("ok/../../escape.txt"), "outside the extraction folder"),
    (_file("/tmp/cliprobe-absolute-escape.txt"), "absolute path"),
    (_link("ok/link", "../../../etc/passwd", tarfile.SYMTYPE), "link pointing outside"),
    (_link("ok/abs", "/etc/passwd", tarfile.SYMTYPE), "absolute path"),
    (_link("ok/hard", "../outside.txt", tarfile.LNKTYPE), "link pointing outside"),
    (_device("ok/null"), "device"),
])
def test_malicious_tar_members_are_refused_and_nothing_is_written(
        member: tarfile.TarInfo, problem: str, tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", [member])
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeArchive) as error:
        extract_archive(archive, tmp_path / "target" / "out", dataset="evil")
    message = str(error.value)
    assert message.startswith("dataset 'evil': archive evil.tar.gz holds an unsafe member")
    assert problem in message and "dataset.evil.source.local_dir" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [*outside_before, "target"]
    assert list((tmp_path / "target").rglob("*")) == []  # not even the harmless member
    assert not Path("/tmp/cliprobe-absolute-escape.txt").exists()


def test_a_malicious_zip_is_refused(tmp_path: Path) -> None:
    for name, problem in [("../escape.txt", "outside"), ("/abs/escape.txt", "absolute"),
                          ("C:/windows/escape.txt", "absolute")]:
        archive = make_zip(tmp_path / "evil.zip", {"ok/fine.txt": b"fine", name: b"evil"})
        with pytest.raises(UnsafeArchive, match=problem):
            extract_archive(archive, tmp_path / "target", dataset="evil")
        assert not (tmp_path / "target").exists() and not (tmp_path / "escape.txt").exists()
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        info = zipfile.ZipInfo("ok/link")
        info.external_attr = (0o120777 << 16)  # a symlink entry
        archive.writestr(info, "../../outside")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract_archive(tmp_path / "link.zip", tmp_path / "target", dataset="evil")


def test_links_inside_the_archive_are_fine_and_garbage_is_a_clear_error(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "ok.tar.gz", [_link("ok/alias.txt", "fine.txt",
                                                       tarfile.SYMTYPE)])
    out = extract_archive(archive, tmp_path / "out", dataset="d")
    assert os.path.islink(out / "ok" / "alias.txt")
    (tmp_path / "junk.tgz").write_bytes(b"not an archive at all")
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        extract_archive(tmp_path / "junk.tgz", tmp_path / "out2", dataset="d")


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="Python without tar filters")
def test_third_party_extraction_runs_with_the_data_filter(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", [_file("../escape.txt")])
    with (download.safe_tar_default(), tarfile.open(archive) as tar,
          pytest.raises(tarfile.FilterError)):
        tar.extractall(tmp_path / "out")  # how torchvision extracts: no filter argument
    assert not (tmp_path / "escape.txt").exists()
    assert tarfile.TarFile.extraction_filter is None  # restored afterwards


def test_a_stale_part_file_from_another_version_costs_no_attempt(http_server: Server,
                                                                tmp_path: Path) -> None:
    url = _publish(http_server, "big.bin", PAYLOAD)
    target = tmp_path / "cache" / "big.bin"
    target.parent.mkdir()
    (target.parent / "big.bin.part").write_bytes(b"x" * 1000)  # not a prefix of PAYLOAD
    download.download(url, target, sha256=sha256(PAYLOAD), timeout=5, retries=1)
    assert target.read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == ["bytes=1000-", None]
