"""Records and summaries: the --json schema for every outcome, and the text summary."""

from __future__ import annotations

import gzip
import io
import json
import socket
import ssl
from pathlib import Path

import trustme
from click.testing import CliRunner
from helpers import fetch_records
from scripted import ScriptedServer, response

from crawlsel.cli import main
from crawlsel.models import FetchResult
from crawlsel.report import RunReport, printable

# The schema documented in the README ("--json").
SCHEMA: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "final_url": (str, type(None)),
    "status": (int, type(None)),
    "path": (str, type(None)),
    "bytes": (int,),
    "elapsed_ms": (int, float),
    "attempts": (int,),
    "skipped": (bool,),
    "skip_reason": (str, type(None)),
    "error": (str, type(None)),
    "error_kind": (str, type(None)),
}
ERROR_KINDS = {
    "invalid_url",
    "dns",
    "connect",
    "reset",
    "timeout",
    "tls",
    "protocol",
    "http",
    "redirect",
    "too_large",
    "decode",
    "write",
}


def validate(record: dict) -> None:
    assert set(record) == set(SCHEMA), record
    for field, types in SCHEMA.items():
        assert isinstance(record[field], types), (field, record)
    if record["error"] is None:
        assert record["error_kind"] is None
    else:
        assert record["error_kind"] in ERROR_KINDS
        assert "\n" not in record["error"]
        assert record["path"] is None


def test_every_outcome_matches_the_documented_schema(tmp_path: Path) -> None:
    ok = ScriptedServer([[("expect",), ("send", response(b"ok")), ("close",)]])
    bad = ScriptedServer([[("expect",), ("send", b"NOT HTTP\r\n"), ("close",)]])
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    tls = ScriptedServer([[("expect",), ("send", response(b"x")), ("close",)]], tls=context)
    scripted = {
        "http": [("expect",), ("send", response(b"", "404 Not Found")), ("close",)],
        "redirect": [
            ("expect",),
            ("send", response(b"", "302 Found", headers=("Location: ftp://x/",))),
            ("close",),
        ],
        "too_large": [("expect",), ("send", response(b"x" * 5000)), ("close",)],
        "decode": [("expect",), ("send", response(b"nope", headers=("Content-Encoding: gzip",))), ("close",)],
        "timeout": [("expect",), ("stall",)],
        "reset": [("expect",), ("reset",)],
    }
    servers = {kind: ScriptedServer([script]) for kind, script in scripted.items()}
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    out = tmp_path / "out"
    existing = out / f"127.0.0.1_{ok.port}" / "skipped"
    existing.parent.mkdir(parents=True)
    existing.write_text("already here")
    urls = [
        ok.url("/page"),
        ok.url("/skipped"),
        "not a url",
        "http://nosuch.invalid/",
        f"http://127.0.0.1:{refused_port}/",
        bad.url("/"),
        tls.url("/"),
        *[server.url("/") for server in servers.values()],
    ]
    try:
        _, records, _ = fetch_records(
            tmp_path,
            urls,
            "--skip-existing",
            "--retries",
            "0",
            "--read-timeout",
            "0.3",
            "--max-size",
            "1K",
            out=out,
        )
    finally:
        for server in [ok, bad, tls, *servers.values()]:
            server.close()
    assert len(records) == len(urls)
    for record in records:
        validate(record)
    kinds = {r["error_kind"] for r in records}
    assert kinds >= {None, "invalid_url", "dns", "connect", "protocol", "tls", *scripted}
    by_url = {r["url"]: r for r in records}
    assert by_url[ok.url("/skipped")]["skipped"] is True
    assert by_url[ok.url("/page")]["error"] is None


def test_write_errors_match_the_schema_too(tmp_path: Path) -> None:
    body = gzip.compress(b"x")
    server = ScriptedServer(
        [[("expect",), ("send", response(body, headers=("Content-Encoding: gzip",))), ("close",)]]
    )
    out = tmp_path / "out"
    (out / f"127.0.0.1_{server.port}").mkdir(parents=True)
    (out / f"127.0.0.1_{server.port}" / "a").mkdir()
    (out / f"127.0.0.1_{server.port}" / "a" / "index.html").mkdir()  # a folder where the file must go
    try:
        result = CliRunner().invoke(
            main, ["fetch", "-", "-o", str(out), "--json", "-q"], input=server.url("/a") + "\n"
        )
    finally:
        server.close()
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    validate(record)
    assert record["error_kind"] == "write"


def result(url: str, ms: float, error: str | None = None, status: int | None = 200) -> FetchResult:
    return FetchResult(
        url=url, status=status, bytes=100, elapsed_ms=ms, error=error, error_kind="http" if error else None
    )


def test_summary_totals_hosts_failures_and_histogram() -> None:
    stderr = io.StringIO()
    report = RunReport(stderr=stderr)
    for i in range(30):
        report.on_result(result(f"http://a.example/{i}", 5 + i))
    report.on_result(result("http://b.example:8080/x", 250))
    for i in range(25):
        report.on_result(result(f"http://b.example:8080/missing{i}", 3, "HTTP 404 Not Found", 404))
    report.close(connections={"a.example": 2, "b.example": 1})
    text = stderr.getvalue()
    first, *rest = text.splitlines()
    assert first.startswith("31 saved (3.0 KiB), 25 failed, ")
    assert any(
        line.split() == ["a.example", "30", "2.9", "KiB", "0", "19.5", "ms", "33.0", "ms", "2"]
        for line in rest
    )
    assert "  and 5 more; see --json" in text
    assert text.count("HTTP 404 Not Found") == 20
    assert "latency:" in text and "#" in text
    assert "\x1b" not in text


def test_control_characters_are_escaped_for_the_terminal() -> None:
    assert printable("http://h/\x1b[2Jx\r\n") == "http://h/\\x1b[2Jx\\x0d\\x0a"


def test_host_table_aligns_wide_host_names() -> None:
    # A CJK character is two terminal cells wide: columns line up on the screen,
    # not by character count (issue 11: the table was misaligned for such hosts).
    from rich.cells import cell_len

    stderr = io.StringIO()
    report = RunReport(stderr=stderr)
    report.on_result(result("http://例え.テスト/x", 5))
    report.on_result(result("http://ascii-only.example/x", 5))
    report.on_result(result("http://ascii-only.example/y", 5))
    report.close(connections={})
    lines = [line for line in stderr.getvalue().splitlines() if "例え" in line or "ascii-only" in line]
    assert len(lines) == 2
    assert cell_len(lines[0]) == cell_len(lines[1])
    ends = {cell_len(line[: line.index(" 1 " if "例え" in line else " 2 ") + 2]) for line in lines}
    assert len(ends) == 1, lines
