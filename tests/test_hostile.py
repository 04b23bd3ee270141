"""The hostile-server battery: every broken server behaviour ends in an exact outcome.

Each case runs ``crawlsel fetch --json`` against a scripted server and asserts
either the exact bytes saved (and where) or the error kind, a fragment of its
message, and that no file was left behind.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import fetch_records
from scripted import ScriptedServer, chunked, response

from crawlsel.cli import main

from servers import HTTPTestServer

OK = ("expect",)


def fetch(tmp_path: Path, urls: list[str], *args: str) -> tuple[int, dict[str, dict], Path]:
    code, records, out = fetch_records(tmp_path, urls, "--retry-delay", "0.01", *args)
    return code, {r["url"]: r for r in records}, out


def files_under(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.exists() else []


def run_case(
    tmp_path: Path, scripts: list[list], *args: str, path: str = "/page"
) -> tuple[dict, Path, ScriptedServer]:
    server = ScriptedServer(scripts)
    try:
        _, records, out = fetch(tmp_path, [server.url(path)], *args)
    finally:
        server.close()
    return records[server.url(path)], out, server


def saved_bytes(out: Path, server: ScriptedServer, name: str = "page") -> bytes:
    return (out / f"127.0.0.1_{server.port}" / name).read_bytes()


# --- framing: valid responses are saved byte for byte ------------------------------

VALID = {
    "content-length": ([OK, ("send", response(b"exact body"))], b"exact body"),
    "chunked with extensions and trailers": (
        [
            OK,
            (
                "send",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4;name=value\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Checksum: 1\r\n\r\n",
            ),
        ],
        b"abcdefg",
    ),
    "close-delimited": ([OK, ("send", response(b"until close", length=False)), ("close",)], b"until close"),
    "HTTP/1.0": ([OK, ("send", b"HTTP/1.0 200 OK\r\n\r\nold server"), ("close",)], b"old server"),
    "interim 100 and 103 skipped": (
        [
            OK,
            (
                "send",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
                + response(b"final"),
            ),
        ],
        b"final",
    ),
    "204 saved empty": ([OK, ("send", b"HTTP/1.1 204 No Content\r\n\r\n")], b""),
    "body with blank lines": ([OK, ("send", response(b"a\r\n\r\nb\r\n\r\n"))], b"a\r\n\r\nb\r\n\r\n"),
    "dripped byte by byte": ([OK, ("drip", response(b"drip" * 5), 0.001)], b"drip" * 5),
    "binary with NUL and 0xff": ([OK, ("send", response(bytes(range(256)) * 3))], bytes(range(256)) * 3),
    "status 200 without reason": ([OK, ("send", b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok")], b"ok"),
    "header folding-free lowercase names": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc")],
        b"abc",
    ),
    "chunk sizes in upper-case hex": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n")],
        b"0123456789",
    ),
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_framing_is_saved_exactly(tmp_path: Path, name: str) -> None:
    script, body = VALID[name]
    record, out, server = run_case(tmp_path, [script])
    assert record["error"] is None, record
    assert saved_bytes(out, server) == body
    assert record["bytes"] == len(body)


# --- framing faults: protocol errors, nothing saved --------------------------------

FAULTS = {
    "body shorter than Content-Length": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"), ("close",)],
        "protocol",
        "server closed the connection after 5 of 10 body bytes",
    ),
    "body longer than Content-Length": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdefgh"), ("close",)],
        "protocol",
        "more than the 3 bytes of its Content-Length",
    ),
    "invalid Content-Length": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nx")],
        "protocol",
        "invalid HTTP response",
    ),
    "conflicting Content-Length": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")],
        "protocol",
        "invalid HTTP response",
    ),
    "garbage chunk size": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")],
        "protocol",
        "invalid HTTP response",
    ),
    "oversized chunk size": (
        [
            OK,
            ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n"),
        ],
        "protocol",
        "invalid HTTP response",
    ),
    "chunk data not followed by CRLF": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n")],
        "protocol",
        "invalid HTTP response",
    ),
    "chunked cut before the last chunk": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), ("close",)],
        "protocol",
        "server closed the connection before the last chunk (3 body bytes received)",
    ),
    "not HTTP at all": (
        [OK, ("send", b"SSH-2.0-OpenSSH_9.2\r\n"), ("close",)],
        "protocol",
        "invalid HTTP response",
    ),
    "zero-byte reply": (
        [OK, ("close",)],
        "protocol",
        "server closed the connection without sending a response",
    ),
    "head cut short": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Le"), ("close",)],
        "protocol",
        "in the middle of the response head",
    ),
    "bad status line": ([OK, ("send", b"HTTP/1.1 2x0 OK\r\n\r\n")], "protocol", "invalid HTTP response"),
    "header line without a colon": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 1\r\n\r\na")],
        "protocol",
        "invalid HTTP response",
    ),
    "unasked 101 Switching Protocols": (
        [OK, ("send", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")],
        "protocol",
        "switched protocols",
    ),
    "header line over 100 KiB": (
        [
            OK,
            ("send", b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (101 * 1024) + b"\r\nContent-Length: 0\r\n\r\n"),
        ],
        "protocol",
        "longer than 100 KiB",
    ),
    "head over 300 KiB": (
        [
            OK,
            (
                "send",
                b"HTTP/1.1 200 OK\r\n"
                + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 8000) for i in range(40))
                + b"\r\n",
            ),
        ],
        "protocol",
        "larger than 300 KiB",
    ),
    "more than 5,000 header lines": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 5001 + b"Content-Length: 0\r\n\r\n")],
        "protocol",
        "more than 5,000 header lines",
    ),
    "endless header line": (
        [OK, ("send", b"HTTP/1.1 200 OK\r\nX-Endless: "), ("forever", b"a" * 65536)],
        "protocol",
        "larger than 300 KiB",
    ),
    "eleven interim responses": (
        [OK, ("send", b"HTTP/1.1 100 Continue\r\n\r\n" * 11 + response(b"late"))],
        "protocol",
        "more than 10 interim 1xx responses",
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_framing_faults_fail_the_url_and_save_nothing(tmp_path: Path, name: str) -> None:
    script, kind, fragment = FAULTS[name]
    record, out, server = run_case(tmp_path, [script])
    assert record["error_kind"] == kind, record
    assert fragment in record["error"], record
    assert record["path"] is None
    assert files_under(out) == []
    assert record["attempts"] == 1  # protocol errors are not retried


# --- limits on the body ------------------------------------------------------------


def test_content_length_over_max_size_fails_before_reading(tmp_path: Path) -> None:
    record, out, _ = run_case(tmp_path, [[OK, ("send", response(b"x" * 5000))]], "--max-size", "1K")
    assert record["error_kind"] == "too_large"
    assert "larger than --max-size (1,024)" in record["error"]
    assert files_under(out) == []


def test_chunked_body_over_max_size_leaves_no_file(tmp_path: Path) -> None:
    body = chunked(*[b"y" * 1000] * 5)
    script = [OK, ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)]
    record, out, _ = run_case(tmp_path, [script], "--max-size", "2K")
    assert record["error_kind"] == "too_large"
    assert files_under(out) == []


def test_gzip_bomb_fails_quickly_at_max_size(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    script = [OK, ("send", response(bomb, headers=("Content-Encoding: gzip",)))]
    record, out, _ = run_case(tmp_path, [script], "--max-size", "1M")
    assert record["error_kind"] == "too_large"
    assert record["error"] == "body larger than --max-size (1,048,576 bytes)"
    assert files_under(out) == []


# --- compression -----------------------------------------------------------------

TEXT = b"The quick brown fox jumps over the lazy dog. " * 50


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


CODINGS = {
    "gzip": ("gzip", gzip.compress(TEXT)),
    "x-gzip": ("x-gzip", gzip.compress(TEXT)),
    "deflate (zlib)": ("deflate", zlib.compress(TEXT)),
    "deflate (raw)": ("deflate", _raw_deflate(TEXT)),
    "multi-member gzip": ("gzip", gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:])),
    "gzip twice": ("gzip, gzip", gzip.compress(gzip.compress(TEXT))),
    "identity": ("identity", TEXT),
}


@pytest.mark.parametrize("name", list(CODINGS))
def test_content_codings_are_saved_decoded(tmp_path: Path, name: str) -> None:
    coding, payload = CODINGS[name]
    script = [OK, ("send", response(payload, headers=(f"Content-Encoding: {coding}",)))]
    record, out, server = run_case(tmp_path, [script])
    assert record["error"] is None, record
    assert saved_bytes(out, server) == TEXT
    assert record["bytes"] == len(TEXT)
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


def test_chunked_gzip_split_at_odd_places(tmp_path: Path) -> None:
    payload = gzip.compress(TEXT)
    body = chunked(*[payload[i : i + 7] for i in range(0, len(payload), 7)])
    script = [
        OK,
        ("send", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + body),
    ]
    record, out, server = run_case(tmp_path, [script])
    assert saved_bytes(out, server) == TEXT


BAD_CODINGS = {
    "corrupt gzip": ("gzip", b"\x1f\x8b\x08\x00garbage-garbage-garbage", "corrupt gzip data"),
    "truncated gzip": ("gzip", gzip.compress(TEXT)[:-12], "gzip data ends before its end"),
    "unsupported coding": ("compress", b"whatever", "unsupported content coding 'compress'"),
    "six stacked codings": (
        "gzip, gzip, gzip, gzip, gzip, gzip",
        b"x",
        "more than 5 stacked codings",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CODINGS))
def test_bad_content_coding_is_a_decode_error(tmp_path: Path, name: str) -> None:
    coding, payload, fragment = BAD_CODINGS[name]
    script = [OK, ("send", response(payload, headers=(f"Content-Encoding: {coding}",)))]
    record, out, _ = run_case(tmp_path, [script])
    assert record["error_kind"] == "decode", record
    assert fragment in record["error"]
    assert files_under(out) == []


def test_no_compressed_saves_the_bytes_received(tmp_path: Path) -> None:
    payload = gzip.compress(TEXT)
    script = [OK, ("send", response(payload, headers=("Content-Encoding: gzip",)))]
    record, out, server = run_case(tmp_path, [script], "--no-compressed")
    assert saved_bytes(out, server) == payload
    assert b"Accept-Encoding: identity\r\n" in server.requests[0]


# --- connection faults -------------------------------------------------------------


def test_reset_before_any_byte_is_retried_then_reported(tmp_path: Path) -> None:
    record, out, server = run_case(tmp_path, [[OK, ("reset",)]])
    assert record["error_kind"] == "reset"
    assert "connection reset by server" in record["error"]
    assert record["attempts"] == 3
    assert server.connections == 3


def test_reset_then_success_is_saved_after_a_retry(tmp_path: Path) -> None:
    record, out, server = run_case(tmp_path, [[OK, ("reset",)], [OK, ("send", response(b"second try"))]])
    assert record["error"] is None
    assert record["attempts"] == 2
    assert saved_bytes(out, server) == b"second try"


def test_reset_in_the_middle_of_the_body(tmp_path: Path) -> None:
    script = [
        OK,
        ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"),
        ("sleep", 0.05),
        ("reset",),
    ]
    record, out, _ = run_case(tmp_path, [script], "--retries", "0")
    assert record["error_kind"] == "reset"
    assert files_under(out) == []


def test_stalled_server_times_out(tmp_path: Path) -> None:
    record, out, _ = run_case(tmp_path, [[OK, ("stall",)]], "--read-timeout", "0.2", "--retries", "0")
    assert record["error_kind"] == "timeout"
    assert record["error"] == "no data from server for 0.2 s"


def test_stall_after_part_of_the_body(tmp_path: Path) -> None:
    script = [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"), ("stall",)]
    record, out, _ = run_case(tmp_path, [script], "--read-timeout", "0.2", "--retries", "0")
    assert record["error_kind"] == "timeout"
    assert files_under(out) == []


def test_slow_drip_below_speed_limit(tmp_path: Path) -> None:
    script = [OK, ("send", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), ("drip", b"z" * 1000, 0.05)]
    record, out, _ = run_case(
        tmp_path, [script], "--speed-limit", "1000", "--speed-time", "0.3", "--retries", "0"
    )
    assert record["error_kind"] == "timeout"
    assert "slower than 1,000 B/s for 0.3 s" in record["error"]
    assert files_under(out) == []


def test_endless_stream_hits_the_whole_url_timeout(tmp_path: Path) -> None:
    script = [
        OK,
        ("send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("forever", b"4\r\nmore\r\n"),
    ]
    record, out, _ = run_case(tmp_path, [script], "--timeout", "0.3")
    assert record["error_kind"] == "timeout"
    assert record["error"] == "gave up after 0.3 s (--timeout)"
    assert files_under(out) == []


def test_the_whole_url_timeout_ends_a_job_waiting_out_a_retry_after(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    """Issue 11 item 1: --timeout fires wherever the job is held, here in its backoff timer
    (Retry-After: 30); without it the retry would go out 30 s later."""
    url = server.add("/busy", b"busy", status=503, reason="Busy", headers=[("Retry-After", "30")])
    code, records, out = fetch(tmp_path, [url], "--timeout", "0.5", "--retries", "3")
    assert code == 1
    assert records[url]["error_kind"] == "timeout"
    assert records[url]["error"] == "gave up after 0.5 s (--timeout)"
    assert len(server.requests) == 1  # the retry never left
    assert files_under(out) == []


def test_one_bad_server_does_not_hold_up_the_others(tmp_path: Path) -> None:
    stalled = ScriptedServer([[OK, ("stall",)]])
    good = ScriptedServer(
        [[OK, ("send", response(b"good")), OK, ("send", response(b"good")), OK, ("send", response(b"good"))]]
    )
    try:
        urls = [stalled.url("/s"), good.url("/1"), good.url("/2"), good.url("/3")]
        code, records, out = fetch(tmp_path, urls, "--read-timeout", "0.3", "--retries", "0")
    finally:
        stalled.close()
        good.close()
    assert code == 1
    assert [records[u]["error"] for u in urls[1:]] == [None, None, None]
    assert records[urls[0]]["error_kind"] == "timeout"
    assert max(records[u]["elapsed_ms"] for u in urls[1:]) < records[urls[0]]["elapsed_ms"]


# --- keep-alive reuse faults ---------------------------------------------------------


def test_idle_connection_closed_by_server_is_replaced_silently(tmp_path: Path) -> None:
    # The server answers one request per connection and then closes, without saying so.
    server = ScriptedServer([[OK, ("send", response(b"one")), ("sleep", 0.05), ("close",)]])
    try:
        code, records, out = fetch(tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1")
    finally:
        server.close()
    assert code == 0
    assert all(r["attempts"] == 1 for r in records.values())
    assert server.connections == 2


def test_request_on_a_dead_reused_connection_is_resent_once_only(tmp_path: Path) -> None:
    # First connection: answers /a, then reads /b and closes. Every later connection: same silence.
    scripts = [[OK, ("send", response(b"a")), OK, ("close",)], [OK, ("close",)]]
    server = ScriptedServer(scripts)
    try:
        code, records, _ = fetch(tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1")
    finally:
        server.close()
    assert records[server.url("/a")]["error"] is None
    b = records[server.url("/b")]
    assert b["error"] == "server closed the connection without sending a response"
    assert b["attempts"] == 1  # resent once on a fresh connection, which failed: not retried
    assert server.connections == 2


def test_extra_bytes_after_a_chunked_response_close_the_connection(tmp_path: Path) -> None:
    first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"first") + b"GARBAGE"
    server = ScriptedServer([[OK, ("send", first)], [OK, ("send", response(b"second"))]])
    try:
        code, records, out = fetch(tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1")
    finally:
        server.close()
    assert code == 0
    assert (out / f"127.0.0.1_{server.port}" / "a").read_bytes() == b"first"
    assert (out / f"127.0.0.1_{server.port}" / "b").read_bytes() == b"second"
    assert server.connections == 2  # the garbage was never parsed as the next response


def test_a_second_unrequested_response_closes_and_the_first_stands(tmp_path: Path) -> None:
    # Issue 12: a keep-alive Content-Length: 5 response followed in the same read by
    # a response nobody asked for. As curl: the first is saved, the connection closes,
    # the next URL goes on a new connection.
    twice = response(b"hello") + response(b"unasked")
    server = ScriptedServer([[OK, ("send", twice), ("sleep", 5)], [OK, ("send", response(b"second"))]])
    try:
        code, records, out = fetch(tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1")
    finally:
        server.close()
    assert code == 0, records
    assert (out / f"127.0.0.1_{server.port}" / "a").read_bytes() == b"hello"
    assert (out / f"127.0.0.1_{server.port}" / "b").read_bytes() == b"second"
    assert server.connections == 2


def test_connection_close_response_is_not_reused(tmp_path: Path) -> None:
    server = ScriptedServer([[OK, ("send", response(b"x", headers=("Connection: close",)))]])
    try:
        code, _, _ = fetch(tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1")
    finally:
        server.close()
    assert code == 0
    assert server.connections == 2
    assert len(server.requests) == 2


def test_pipelined_requests_left_unanswered_are_sent_again(tmp_path: Path) -> None:
    scripts = [
        [OK, OK, ("send", response(b"a", headers=("Connection: close",))), ("close",)],
        [OK, ("send", response(b"b"))],
    ]
    server = ScriptedServer(scripts)
    try:
        code, records, out = fetch(
            tmp_path, [server.url("/a"), server.url("/b")], "--per-host", "1", "--pipeline", "2"
        )
    finally:
        server.close()
    assert code == 0
    assert (out / f"127.0.0.1_{server.port}" / "b").read_bytes() == b"b"
    assert records[server.url("/b")]["attempts"] == 1


# --- retries -------------------------------------------------------------------------


def test_503_then_200(tmp_path: Path) -> None:
    scripts = [
        [OK, ("send", response(b"busy", "503 Service Unavailable")), ("close",)],
        [OK, ("send", response(b"now")), ("close",)],
    ]
    record, out, server = run_case(tmp_path, scripts)
    assert record["error"] is None
    assert record["attempts"] == 2
    assert saved_bytes(out, server) == b"now"


@pytest.mark.parametrize(
    "status",
    [
        "408 Request Timeout",
        "429 Too Many Requests",
        "500 Internal Server Error",
        "502 Bad Gateway",
        "504 Gateway Timeout",
    ],
)
def test_retried_statuses(tmp_path: Path, status: str) -> None:
    scripts = [
        [OK, ("send", response(b"no", status)), ("close",)],
        [OK, ("send", response(b"yes")), ("close",)],
    ]
    record, _, _ = run_case(tmp_path, scripts)
    assert (record["status"], record["attempts"]) == (200, 2)


@pytest.mark.parametrize(
    "status", ["400 Bad Request", "403 Forbidden", "404 Not Found", "410 Gone", "501 Not Implemented"]
)
def test_statuses_never_retried(tmp_path: Path, status: str) -> None:
    record, out, server = run_case(tmp_path, [[OK, ("send", response(b"no", status)), ("close",)]])
    assert record["attempts"] == 1
    assert record["error"] == f"HTTP {status}"
    assert record["error_kind"] == "http"
    assert server.connections == 1
    assert files_under(out) == []


def test_retries_exhausted_reports_the_last_status(tmp_path: Path) -> None:
    record, _, server = run_case(
        tmp_path, [[OK, ("send", response(b"down", "500 Internal Server Error")), ("close",)]]
    )
    assert (record["status"], record["attempts"]) == (500, 3)
    assert record["error"] == "HTTP 500 Internal Server Error"


def test_retry_after_seconds_and_http_date(tmp_path: Path) -> None:
    scripts = [
        [OK, ("send", response(b"", "429 Too Many Requests", headers=("Retry-After: 0",))), ("close",)],
        [
            OK,
            (
                "send",
                response(
                    b"", "503 Service Unavailable", headers=("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT",)
                ),
            ),
            ("close",),
        ],
        [OK, ("send", response(b"done")), ("close",)],
    ]
    record, _, _ = run_case(tmp_path, scripts, "--retry-delay", "30")  # the headers, not the backoff, decide
    assert (record["error"], record["attempts"]) == (None, 3)


def test_retry_after_is_capped_by_max_retry_wait(tmp_path: Path) -> None:
    scripts = [
        [OK, ("send", response(b"", "503 Service Unavailable", headers=("Retry-After: 3600",))), ("close",)],
        [OK, ("send", response(b"ok")), ("close",)],
    ]
    record, _, _ = run_case(tmp_path, scripts, "--max-retry-wait", "0.05")
    assert (record["error"], record["attempts"]) == (None, 2)


def test_retries_zero(tmp_path: Path) -> None:
    record, _, server = run_case(
        tmp_path, [[OK, ("send", response(b"", "503 Service Unavailable")), ("close",)]], "--retries", "0"
    )
    assert record["attempts"] == 1
    assert server.connections == 1


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}/"
    _, records, _ = fetch(tmp_path, [url])
    assert records[url]["error_kind"] == "connect"
    assert records[url]["error"] == f"could not connect to 127.0.0.1:{port}: Connection refused"
    assert records[url]["attempts"] == 3


# --- redirects -----------------------------------------------------------------------


def redirect(location: str, status: str = "302 Found") -> list:
    return [OK, ("send", response(b"moved", status, headers=(f"Location: {location}",))), ("close",)]


def final(body: bytes = b"landed") -> list:
    return [OK, ("send", response(body)), ("close",)]


@pytest.mark.parametrize(
    ("location", "expected_path"),
    [
        ("/b/target", "/b/target"),
        ("target", "/dir/target"),
        ("../up", "/up"),
        ("./same/../x?q=1", "/dir/x?q=1"),
        ("?only=query", "/dir/page?only=query"),
        ("HOST_SELF/abs", "/abs"),
        ("//HOSTPORT/scheme-relative", "/scheme-relative"),
    ],
)
def test_redirect_locations_are_resolved(tmp_path: Path, location: str, expected_path: str) -> None:
    server = ScriptedServer([])
    location = location.replace("HOST_SELF", server.base).replace("HOSTPORT", f"127.0.0.1:{server.port}")
    server.scripts = [redirect(location), final()]
    try:
        _, records, out = fetch(tmp_path, [server.url("/dir/page")])
    finally:
        server.close()
    record = records[server.url("/dir/page")]
    assert record["error"] is None, record
    assert record["final_url"] == server.url(expected_path)
    assert server.requests[1].split(b" ")[1].decode() == expected_path
    # saved under the name of the URL from the list, never the target's
    assert record["path"] == str(out / f"127.0.0.1_{server.port}" / "dir" / "page")
    assert files_under(out) == [f"127.0.0.1_{server.port}/dir/page"]


@pytest.mark.parametrize(
    "status",
    [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ],
)
def test_every_redirect_status_is_followed(tmp_path: Path, status: str) -> None:
    record, out, server = run_case(tmp_path, [redirect("/next", status), final(b"next")])
    assert record["error"] is None
    assert record["status"] == 200
    assert saved_bytes(out, server) == b"next"


def test_redirect_loop_is_detected(tmp_path: Path) -> None:
    server = ScriptedServer([])
    server.scripts = [redirect("/b"), redirect("/a")]
    try:
        _, records, out = fetch(tmp_path, [server.url("/a")])
    finally:
        server.close()
    record = records[server.url("/a")]
    assert record["error_kind"] == "redirect"
    assert record["error"] == f"redirect loop: {server.url('/a')} -> {server.url('/b')} -> {server.url('/a')}"
    assert files_under(out) == []


def test_too_many_redirects(tmp_path: Path) -> None:
    server = ScriptedServer([redirect(f"/r{i}") for i in range(1, 20)])
    try:
        _, records, _ = fetch(tmp_path, [server.url("/r0")], "--max-redirects", "3")
    finally:
        server.close()
    assert records[server.url("/r0")]["error"] == "too many redirects (more than 3)"
    assert server.connections == 4


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "gopher://h/"]
)
def test_redirects_to_other_schemes_are_refused(tmp_path: Path, location: str) -> None:
    record, out, _ = run_case(tmp_path, [redirect(location)])
    assert record["error_kind"] == "redirect"
    assert "redirect to unsupported URL scheme" in record["error"]
    assert files_under(out) == []


def test_3xx_without_location_is_final(tmp_path: Path) -> None:
    record, out, _ = run_case(tmp_path, [[OK, ("send", response(b"", "302 Found"))]])
    assert (record["status"], record["error"]) == (302, "HTTP 302 Found without a Location")
    assert files_under(out) == []


@pytest.mark.parametrize("spelling", [b"Location:", b"Location: ", b"Location:  \t"])
def test_3xx_with_an_empty_location_is_final(tmp_path: Path, spelling: bytes) -> None:
    # An empty Location is no reference at all (RFC 9110 10.2.2 needs a URI-reference
    # of at least one character to follow), not a redirect back to the same URL.
    reply = b"HTTP/1.1 302 Found\r\n" + spelling + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    record, out, _ = run_case(tmp_path, [[OK, ("send", reply), ("close",)]])
    assert (record["status"], record["error"]) == (302, "HTTP 302 Found with an empty Location")
    assert files_under(out) == []


def test_no_follow_reports_the_redirect(tmp_path: Path) -> None:
    record, out, server = run_case(tmp_path, [redirect("/elsewhere", "301 Moved Permanently")], "--no-follow")
    assert record["status"] == 301
    assert record["error"] == "HTTP 301 Moved Permanently (not followed: --no-follow)"
    assert files_under(out) == []
    assert server.connections == 1


def test_credentials_are_dropped_when_the_origin_changes(tmp_path: Path) -> None:
    other = ScriptedServer([final(b"other origin")])
    server = ScriptedServer([redirect("/same"), redirect(other.url("/there"))])
    try:
        _, records, _ = fetch(
            tmp_path,
            [server.url("/start")],
            "-H",
            "Authorization: Bearer secret",
            "-H",
            "Cookie: a=b",
            "-H",
            "X-Kept: yes",
        )
    finally:
        other.close()
        server.close()
    assert records[server.url("/start")]["error"] is None
    for request in server.requests:  # same origin: credentials sent
        assert b"Authorization: Bearer secret" in request and b"Cookie: a=b" in request
    (elsewhere,) = other.requests
    assert b"Authorization" not in elsewhere and b"Cookie" not in elsewhere
    assert b"X-Kept: yes" in elsewhere


# --- input lines ---------------------------------------------------------------------


def test_duplicated_urls_are_fetched_once(tmp_path: Path) -> None:
    server = ScriptedServer([[OK, ("send", response(b"x")), OK, ("send", response(b"y"))]])
    try:
        code, records, _ = fetch(
            tmp_path, [server.url("/a"), server.url("/a"), server.url("/a#frag")], "--per-host", "1"
        )
    finally:
        server.close()
    assert code == 0
    assert len(server.requests) == 1


def test_spaces_and_escapes_never_reach_the_request_line_raw(tmp_path: Path) -> None:
    server = ScriptedServer([final()])
    try:
        fetch(tmp_path, [server.base + "/a b/%0d%0aX-Injected: 1"])
    finally:
        server.close()
    (request,) = server.requests
    assert request.startswith(b"GET /a%20b/%0D%0AX-Injected:%201 HTTP/1.1\r\n")
    assert b"\r\nX-Injected" not in request


def test_idn_host_is_sent_as_punycode(tmp_path: Path) -> None:
    server = ScriptedServer([final(b"idn")])
    try:
        url = f"http://bücher.example:{server.port}/"
        _, records, out = fetch(
            tmp_path, [url], "--resolve", f"xn--bcher-kva.example:{server.port}:127.0.0.1"
        )
    finally:
        server.close()
    assert records[url]["error"] is None
    assert f"Host: xn--bcher-kva.example:{server.port}\r\n".encode() in server.requests[0]
    assert (out / f"xn--bcher-kva.example_{server.port}" / "index.html").read_bytes() == b"idn"


BAD_LINES = {
    "http://h/\x01x": "contains control characters",
    "http://a@b:c@d/": "user names and passwords",
    "http://h:65536/": "invalid port",
    "http:///nohost": "not an absolute http(s) URL",
    "mailto:x@y": "not an absolute http(s) URL",
    "https://[zz]/": "malformed URL",
}


def test_bad_input_lines_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    code, records, _ = fetch(tmp_path, list(BAD_LINES))
    assert code == 1
    for number, (line, reason) in enumerate(BAD_LINES.items(), start=1):
        record = records[line]
        assert record["error_kind"] == "invalid_url"
        assert f"line {number}: {reason}" in record["error"], record


# --- files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/x", "/..%2f..%2fx", "/a/..\\..\\b", "/C:/Windows"]
)
def test_hostile_paths_stay_inside_the_output_folder(tmp_path: Path, path: str) -> None:
    server = ScriptedServer([final(b"contained")])
    try:
        _, records, out = fetch(tmp_path, [server.base + path])
    finally:
        server.close()
    (record,) = records.values()
    saved = Path(record["path"]).resolve()
    assert saved.is_relative_to((out / f"127.0.0.1_{server.port}").resolve())
    assert saved.read_bytes() == b"contained"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "urls.txt"]


def test_planted_symlink_at_the_target_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    server = ScriptedServer([final(b"new page")])
    try:
        folder = tmp_path / "out" / f"127.0.0.1_{server.port}"
        folder.mkdir(parents=True)
        (folder / "page").symlink_to(victim)
        _, records, out = fetch(tmp_path, [server.url("/page")])
    finally:
        server.close()
    assert victim.read_text() == "precious"
    assert not (folder / "page").is_symlink()
    assert (folder / "page").read_bytes() == b"new page"


def test_skip_existing_fetches_nothing_already_saved(tmp_path: Path) -> None:
    server = ScriptedServer([[OK, ("send", response(b"fresh")), OK, ("send", response(b"fresh"))]])
    try:
        folder = tmp_path / "out" / f"127.0.0.1_{server.port}"
        folder.mkdir(parents=True)
        (folder / "old").write_bytes(b"from before")
        code, records, _ = fetch(tmp_path, [server.url("/old"), server.url("/new")], "--skip-existing")
    finally:
        server.close()
    assert code == 0
    assert records[server.url("/old")]["skipped"] is True
    assert records[server.url("/old")]["path"] == str(folder / "old")
    assert (folder / "old").read_bytes() == b"from before"
    assert (folder / "new").read_bytes() == b"fresh"
    assert [r.split(b" ")[1] for r in server.requests] == [b"/new"]


def test_unwritable_output_folder_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(
        main, ["fetch", "-o", str(tmp_path / "file" / "out"), "-"], input="http://127.0.0.1:9/\n"
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"crawlsel: error: cannot create output folder {tmp_path / 'file' / 'out'}: "
    )
    assert len(result.stderr.splitlines()) == 1


def test_case_only_differences_never_overwrite(tmp_path: Path) -> None:
    server = ScriptedServer([[OK, ("send", response(b"upper")), OK, ("send", response(b"lower"))]])
    try:
        _, records, out = fetch(tmp_path, [server.url("/Page"), server.url("/page")], "--per-host", "1")
    finally:
        server.close()
    paths = {records[u]["path"] for u in records}
    assert len(paths) == 2
    assert sorted(Path(p).read_bytes() for p in paths) == [b"lower", b"upper"]


def test_disk_full_is_a_write_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    server = ScriptedServer([final(os.urandom(200_000))])
    source = tmp_path / "urls.txt"
    source.write_text(server.url("/big") + "\n")
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "crawlsel",
                "fetch",
                str(source),
                "-o",
                str(tmp_path / "out"),
                "--json",
                "-q",
            ],
            capture_output=True,
            preexec_fn=small_files,
            timeout=20,
        )
    finally:
        server.close()
    record = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert record["error_kind"] == "write"
    assert "File too large" in record["error"]
    assert files_under(tmp_path / "out") == []


# --- issue 11.2: a response without a body is never decoded -----------------------

# RFC 9110 6.4.1: HEAD, 204 and 304 have no content; a Content-Length of 0 is none either.
EMPTY_CODED = {
    "204 with gzip": b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
    "304 with gzip": b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\n\r\n",
    "200 Content-Length 0 with gzip": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Encoding: gzip\r\n\r\n",
    "200 Content-Length 0 with br": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Encoding: br\r\n\r\n",
}


@pytest.mark.parametrize("name", list(EMPTY_CODED))
def test_a_coded_response_without_body_is_an_empty_page(tmp_path: Path, name: str) -> None:
    record, out, server = run_case(tmp_path, [[OK, ("send", EMPTY_CODED[name])]])
    if record["status"] == 304:
        assert record["error_kind"] == "http", record  # a 304 is not a page
        assert "decode" not in record["error"] and "gzip" not in record["error"]
        return
    assert record["error"] is None, record
    assert saved_bytes(out, server) == b""


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_get_head_of_a_coded_page_is_not_decoded(coding: str) -> None:
    # As curl -I against nginx with gzip on: the head of a gzipped page, no body.
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: {coding}\r\n\r\n".encode()
    server = ScriptedServer([[OK, ("send", head)]])
    try:
        result = CliRunner().invoke(main, ["get", "-I", server.url("/bigtext.txt")])
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Encoding: {coding}".encode() in result.stdout_bytes


def test_an_unsupported_coding_with_a_body_stays_a_decode_error(tmp_path: Path) -> None:
    script = [OK, ("send", response(b"x", headers=("Content-Encoding: compress",)))]
    record, out, _ = run_case(tmp_path, [script])
    assert record["error_kind"] == "decode"
    assert "unsupported content coding 'compress'" in record["error"]
    assert files_under(out) == []


# --- issue 11.3: transfer codings are decoded or fail ------------------------------

TE_DECODED = {
    # RFC 9112 6.1: codings in the order applied, chunked last.
    "TE gzip, chunked": (
        b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(gzip.compress(TEXT)),
        False,
    ),
    # curl test 1123: Transfer-Encoding: deflate, chunked.
    "TE deflate, chunked (curl 1123)": (
        b"Transfer-Encoding: deflate, chunked\r\n\r\n" + chunked(zlib.compress(TEXT)),
        False,
    ),
    # RFC 9112 6.3 (7): no chunked last, so the body ends at the close.
    "TE gzip, close-delimited": (b"Transfer-Encoding: gzip\r\n\r\n" + gzip.compress(TEXT), True),
    # RFC 9110 5.3: two lines are one list, "gzip, chunked".
    "TE on two lines, chunked last": (
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(gzip.compress(TEXT)),
        False,
    ),
    # RFC 9110 5.3: a body gzipped twice, named on two Content-Encoding lines.
    "CE gzip on two lines": (
        b"Content-Encoding: gzip\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(gzip.compress(gzip.compress(TEXT))),
        False,
    ),
    # curl test 1277: CE deflate inside TE gzip; TE layers are undone first.
    "CE deflate with TE gzip (curl 1277)": (
        b"Content-Encoding: deflate\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        + chunked(gzip.compress(zlib.compress(TEXT))),
        False,
    ),
}


@pytest.mark.parametrize("name", list(TE_DECODED))
def test_transfer_codings_are_decoded(tmp_path: Path, name: str) -> None:
    rest, close = TE_DECODED[name]
    script = [OK, ("send", b"HTTP/1.1 200 OK\r\n" + rest)] + ([("close",)] if close else [])
    record, out, server = run_case(tmp_path, [script])
    assert record["error"] is None, record
    assert saved_bytes(out, server) == TEXT


def test_no_compressed_still_removes_transfer_codings(tmp_path: Path) -> None:
    payload = gzip.compress(TEXT)
    script = [
        OK,
        (
            "send",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            + chunked(gzip.compress(payload)),
        ),
    ]
    record, out, server = run_case(tmp_path, [script], "--no-compressed")
    assert record["error"] is None, record
    assert saved_bytes(out, server) == payload


TE_REFUSED = {
    # curl tests 1722/1723: an unknown coding after chunked; curl fails with error 61.
    "chunked, another (curl 1722)": (
        b"Transfer-Encoding: chunked, another\r\n\r\n" + chunked(b"abc"),
        "unsupported transfer coding 'another'",
    ),
    "chunked, chunked, another (curl 1723)": (
        b"Transfer-Encoding: chunked, chunked, another\r\n\r\n" + chunked(b"abc"),
        "another",
    ),
    "unknown transfer coding": (b"Transfer-Encoding: br\r\n\r\nabc", "unsupported transfer coding 'br'"),
    # RFC 9112 6.1: chunked not last; the page would hold chunk framing.
    "TE on two lines, gzip last": (
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" + gzip.compress(chunked(TEXT)),
        "'chunked' is not the last",
    ),
}


@pytest.mark.parametrize("name", list(TE_REFUSED))
def test_unknown_transfer_codings_fail(tmp_path: Path, name: str) -> None:
    rest, fragment = TE_REFUSED[name]
    record, out, _ = run_case(tmp_path, [[OK, ("send", b"HTTP/1.1 200 OK\r\n" + rest), ("close",)]])
    assert record["error_kind"] == "decode", record
    assert fragment in record["error"]
    assert files_under(out) == []


# --- issue 11.4: what curl accepts where the end of the message is unambiguous -----

LENIENT = {
    # curl tests 34, 47, 1033: heads with bare LF line ends.
    "bare LF head (curl 47)": b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
    "bare LF head, CRLF chunks": b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n",
    # RFC 9112 7.1.1: BWS before ";" in a chunk extension.
    "space before chunk extension": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ;a=b\r\nabc\r\n0\r\n\r\n"
    ),
    # RFC 9112 7.1.1 and RFC 9110 5.6.3: BWS after ";" and around "=" too.
    "spaces around chunk extension parts": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'1 ; sp=1\r\na\r\n1;a = b\r\nb\r\n1;x= "y z"\r\nc\r\n0\r\n\r\n'
    ),
    # RFC 9112 6.3: chunked wins over Content-Length; the connection closes after.
    "Content-Length with chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
    # RFC 9112 5.2: a user agent MUST replace obs-fold with a space.
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\tthree\r\nContent-Length: 3\r\n\r\nabc",
    # RFC 9112 6.3: repeated, equal lengths are one length (as curl).
    "Content-Length twice": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "Content-Length 3, 3": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    # curl accepts header lines up to 100 KiB.
    "header line of 90 KiB": b"HTTP/1.1 200 OK\r\nX-Big: "
    + b"a" * (90 * 1024)
    + b"\r\nContent-Length: 3\r\n\r\nabc",
    # ...and up to 5,000 header lines within the 300 KiB head.
    "5,000 header lines": b"HTTP/1.1 200 OK\r\n" + b"X-N: 1\r\n" * 4999 + b"Content-Length: 3\r\n\r\nabc",
}


@pytest.mark.parametrize("name", list(LENIENT))
def test_lenient_heads_as_curl(tmp_path: Path, name: str) -> None:
    record, out, server = run_case(tmp_path, [[OK, ("send", LENIENT[name])]])
    assert record["error"] is None, record
    assert saved_bytes(out, server) == b"abc"


def test_bare_lf_chunk_lines_are_a_protocol_error_not_a_page(tmp_path: Path) -> None:
    """curl test 34 ends its chunk lines with a bare LF too (RFC 9112 2.2: a MAY); llhttp has
    no leniency for it and a guess would misframe, so the URL fails and nothing is saved."""
    curl_34 = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nab\n1;e=1\nc\n0\n\n"
    record, out, _ = run_case(tmp_path, [[OK, ("send", curl_34), ("close",)]])
    assert record["error_kind"] == "protocol", record
    assert "chunk size" in record["error"]
    assert files_under(out) == []


def test_spaced_chunk_extensions_beside_chunk_data_that_looks_like_them(tmp_path: Path) -> None:
    # The chunk data holds a line shaped like a spaced chunk line; only real ones are cut,
    # in the first send and in later ones, with a pipelined-style second chunk line.
    data = b"x\n2 ; y\nz"
    first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x ; e=1\r\n%s\r\n" % (len(data), data)
    steps = [OK, ("send", first), ("send", b"3 ;  f = 2\r\nend\r\n0\r\n\r\n")]
    record, out, server = run_case(tmp_path, [steps])
    assert record["error"] is None, record
    assert saved_bytes(out, server) == data + b"end"


def test_repeated_content_length_in_a_pipelined_head(tmp_path: Path) -> None:
    # RFC 9112 6.3, as curl: equal lengths are one, also when the head arrives
    # right after another response in the same packet.
    twice = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nb"
    scripts = [
        [
            OK,
            OK,
            (
                "send",
                response(b"a")
                + twice
                + response(b"c").replace(b"Content-Length: 1", b"Content-Length: 1, 1"),
            ),
        ]
    ]
    scripts[0].insert(0, OK)
    server = ScriptedServer(scripts)
    urls = [server.url(p) for p in ("/a", "/b", "/c")]
    try:
        code, records, out = fetch(tmp_path, urls, "--per-host", "1", "--pipeline", "3")
    finally:
        server.close()
    assert code == 0, records
    folder = out / f"127.0.0.1_{server.port}"
    assert [(folder / n).read_bytes() for n in "abc"] == [b"a", b"b", b"c"]
    assert server.connections == 1


def test_content_encoding_none_is_identity(tmp_path: Path) -> None:
    # curl treats "Content-Encoding: none" as identity.
    record, out, server = run_case(
        tmp_path, [[OK, ("send", response(b"abc", headers=("Content-Encoding: none",)))]]
    )
    assert record["error"] is None, record
    assert saved_bytes(out, server) == b"abc"


def test_two_different_content_lengths_are_refused_with_both_values(tmp_path: Path) -> None:
    # RFC 9112 6.3: different lengths leave the end of the body unknown.
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    record, out, server = run_case(tmp_path, [[OK, ("send", reply)]])
    assert record["error_kind"] == "protocol"
    assert "different Content-Length values (3, 4)" in record["error"]
