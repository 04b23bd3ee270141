"""br and zstd bodies (``crawlsel[brotli]``, ``crawlsel[zstd]``): offered only when they can be
decoded, decoded with gzip's limits, and an error of kind ``decode`` when they cannot.

A real threaded server on 127.0.0.1 sends bodies compressed by the same libraries
a server links (Google's brotli, libzstd through compression.zstd or its backport).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
from helpers import fetch_records

from servers import HTTPTestServer

brotli = pytest.importorskip("brotli", reason="pip install 'crawlsel[brotli]'")
if sys.version_info >= (3, 14):
    from compression import zstd
else:
    zstd = pytest.importorskip("backports.zstd", reason="pip install 'crawlsel[zstd]'")

TEXT = b"".join(b"line %d of a page that compresses well\n" % i for i in range(5000))


def fetch_one(
    server: HTTPTestServer, tmp_path: Path, body: bytes, coding: str, *args: str
) -> tuple[dict, Path]:
    url = server.add("/page", body, headers=[("Content-Encoding", coding)])
    _, records, out = fetch_records(tmp_path, [url], *args)
    return records[0], out


def saved(out: Path, server: HTTPTestServer) -> bytes:
    return (out / f"127.0.0.1_{server.port}" / "page").read_bytes()


@pytest.mark.parametrize(
    "coding, body",
    [
        ("br", brotli.compress(TEXT)),
        ("zstd", zstd.compress(TEXT)),
        ("zstd", zstd.compress(TEXT[:1000]) + zstd.compress(TEXT[1000:])),  # two frames (RFC 8878 3.1)
        ("br, gzip", gzip.compress(brotli.compress(TEXT))),
        ("gzip, zstd", zstd.compress(gzip.compress(TEXT))),
    ],
    ids=["br", "zstd", "zstd two frames", "br then gzip", "gzip then zstd"],
)
def test_br_and_zstd_are_offered_and_saved_decoded(
    server: HTTPTestServer, tmp_path: Path, coding: str, body: bytes
) -> None:
    record, out = fetch_one(server, tmp_path, body, coding)
    assert record["error"] is None, record
    assert saved(out, server) == TEXT
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate, br, zstd"


def fast_brotli(data: bytes) -> bytes:
    return brotli.compress(data, quality=1)


@pytest.mark.parametrize("coding, compress", [("br", fast_brotli), ("zstd", zstd.compress)])
def test_a_bomb_stops_at_max_size(server: HTTPTestServer, tmp_path: Path, coding: str, compress) -> None:
    bomb = compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in a few KiB
    record, out = fetch_one(server, tmp_path, bomb, coding, "--max-size", "1000000")
    assert record["error_kind"] == "too_large", record
    assert list(out.rglob("page*")) == []


@pytest.mark.parametrize("coding, compress", [("br", brotli.compress), ("zstd", zstd.compress)])
def test_truncated_and_corrupt_bodies_are_decode_errors(
    server: HTTPTestServer, tmp_path: Path, coding: str, compress
) -> None:
    whole = compress(TEXT)
    record, out = fetch_one(server, tmp_path, whole[: len(whole) // 2], coding)
    assert record["error_kind"] == "decode" and f"{coding} data ends before its end" in record["error"], (
        record
    )
    record, out = fetch_one(server, tmp_path, b"not compressed at all" * 10, coding)
    assert record["error_kind"] == "decode" and f"corrupt {coding} data" in record["error"], record
    assert list(out.rglob("page*")) == []


def test_without_the_libraries_br_is_not_offered_and_names_the_extra(
    server: HTTPTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "brotli", None)  # find_spec and import now fail, as when absent
    monkeypatch.setitem(sys.modules, "backports.zstd", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    record, out = fetch_one(server, tmp_path, brotli.compress(TEXT), "br")
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"
    assert record["error_kind"] == "decode"
    assert "pip install 'crawlsel[brotli]'" in record["error"]
    assert list(out.rglob("page*")) == []


def test_br_as_a_transfer_coding_is_refused(server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add("/page", brotli.compress(TEXT), headers=[("Transfer-Encoding", "br")])
    _, records, out = fetch_records(tmp_path, [url])
    assert records[0]["error_kind"] == "decode"
    assert "unsupported transfer coding 'br'" in records[0]["error"]
