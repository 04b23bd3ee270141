"""Every engine passes the same functional subset, and writes the same --json records."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import fetch_records
from scripted import ScriptedServer, response

from crawlsel.cli import main
from crawlsel.engines import ENGINES

from servers import HTTPTestServer

BINARY = bytes(range(256)) * 40


def fetch(tmp_path: Path, urls: list[str], engine: str, *args: str) -> tuple[int, dict[str, dict], Path]:
    code, records, out = fetch_records(
        tmp_path, urls, "--engine", engine, "--retry-delay", "0.01", *args, out=tmp_path / f"out-{engine}"
    )
    return code, {r["url"]: r for r in records}, out


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def test_exact_bytes_for_every_framing(engine: str, server: HTTPTestServer, tmp_path: Path) -> None:
    big = os.urandom(200_000)
    pages = {
        "/length": (b"content length", "length"),
        "/chunked": (big, "chunked"),
        "/close": (b"close delimited", "close"),
        "/binary": (BINARY, "length"),
        "/tricky": (b"a\r\n\r\nb\r\n\r\n", "chunked"),
    }
    urls = [
        server.add(path, body, framing=framing, chunk_size=777) for path, (body, framing) in pages.items()
    ]
    code, records, out = fetch(tmp_path, urls, engine)
    assert code == 0
    for path, (body, _) in pages.items():
        assert (out / f"127.0.0.1_{server.port}" / path[1:]).read_bytes() == body
        assert records[server.url(path)]["bytes"] == len(body)


def test_keep_alive_connections_are_reused(engine: str, server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/{i}", f"page {i}".encode()) for i in range(40)]
    code, _, _ = fetch(tmp_path, urls, engine, "-c", "4", "--per-host", "4")
    assert code == 0
    assert len(server.requests) == 40
    assert server.connections <= 4


def test_errors_are_the_same_one_line_records(engine: str, tmp_path: Path) -> None:
    garbage = ScriptedServer([[("expect",), ("send", b"SSH-2.0-x\r\n"), ("close",)]])
    missing = ScriptedServer([[("expect",), ("send", response(b"no", "404 Not Found")), ("close",)]])
    stalled = ScriptedServer([[("expect",), ("stall",)]])
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{refused.getsockname()[1]}/"
    refused.close()
    urls = [garbage.url("/"), missing.url("/"), stalled.url("/"), refused_url, "not a url"]
    try:
        code, records, out = fetch(tmp_path, urls, engine, "--read-timeout", "0.3", "--retries", "1")
    finally:
        for s in (garbage, missing, stalled):
            s.close()
    assert code == 1
    kinds = {url: (r["error_kind"], r["attempts"]) for url, r in records.items()}
    assert kinds == {
        garbage.url("/"): ("protocol", 1),
        missing.url("/"): ("http", 1),
        stalled.url("/"): ("timeout", 2),
        refused_url: ("connect", 2),
        "not a url": ("invalid_url", 1),
    }
    assert records[stalled.url("/")]["error"] == "no data from server for 0.3 s"
    assert not any(p.is_file() for p in out.rglob("*"))


def test_redirects_and_resends(engine: str, tmp_path: Path) -> None:
    server = ScriptedServer(
        [
            [
                ("expect",),
                ("send", response(b"", "302 Found", headers=("Location: /there",))),
                ("expect",),
                ("close",),
            ],
            [("expect",), ("send", response(b"arrived")), ("close",)],
        ]
    )
    try:
        code, records, out = fetch(tmp_path, [server.url("/here")], engine, "--per-host", "1", "-c", "1")
    finally:
        server.close()
    record = records[server.url("/here")]
    assert code == 0, record
    assert record["final_url"] == server.url("/there")
    assert record["attempts"] == 1  # the request on the dead keep-alive connection was resent for free
    assert (out / f"127.0.0.1_{server.port}" / "here").read_bytes() == b"arrived"


def test_records_do_not_depend_on_the_engine(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/p{i}", f"body {i}".encode() * i) for i in range(10)] + [
        server.url("/nope"),
        "bad line",
    ]
    seen = {}
    for name in ENGINES:
        _, records, out = fetch(tmp_path, urls, name)
        seen[name] = {
            url: {
                k: (v.replace(str(out), "OUT") if isinstance(v, str) else v)
                for k, v in r.items()
                if k != "elapsed_ms"
            }
            for url, r in records.items()
        }
    assert all(seen[name] == seen["select"] for name in ENGINES)


def test_compare_runs_every_engine_and_checks_the_bytes(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/c{i}", f"compare {i}".encode() * 50, delay=0.02) for i in range(12)]
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    result = CliRunner().invoke(main, ["compare", str(source), "-c", "4", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["engine"] for r in rows] == list(ENGINES)
    assert all(r["pages"] == 12 and r["failed"] == 0 and r["same_bytes"] for r in rows)
    by = {r["engine"]: r for r in rows}
    assert by["threads"]["peak_threads"] >= 4 > by["select"]["peak_threads"]
    assert "vs blocking" in result.stderr
    assert "All engines saved the same bytes." in result.stderr


def test_tls_errors_are_the_same_for_every_engine(engine: str, tmp_path: Path) -> None:
    import gc
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    untrusted = ScriptedServer([[("expect",), ("send", response(b"x")), ("close",)]], tls=context)
    try:
        code, records, out = fetch(tmp_path, [untrusted.url("/")], engine, "--retries", "0")
    finally:
        untrusted.close()
    gc.collect()  # an unclosed socket would now raise a ResourceWarning (an error here)
    (record,) = records.values()
    assert code == 1
    assert record["error_kind"] == "tls"
    assert record["error"] == "certificate verify failed: unable to get local issuer certificate"
