"""``get -i`` and ``get -I`` print heads as received, as curl -i does (issue 11, item 6).

Scripted replies, byte for byte: interim 1xx heads come before the final head,
field lines keep their spelling (``X-A:b``), trailers follow the body, bare LF
line ends stay bare.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from scripted import ScriptedServer

from crawlsel.cli import main

EXPECT = ("expect",)


def get(server: ScriptedServer, *args: str, paths: tuple[str, ...] = ("/page",)) -> tuple[int, bytes]:
    try:
        result = CliRunner().invoke(
            main, ["get", *args, *(server.url(p) for p in paths)], catch_exceptions=False
        )
    finally:
        server.close()
    return result.exit_code, result.stdout_bytes


HEAD_AS_SENT = (
    b"HTTP/1.1 200 OK\r\nX-A:b\r\nx-lower:  two  spaces\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
)


def test_field_lines_are_printed_as_sent() -> None:
    code, out = get(ScriptedServer([[EXPECT, ("send", HEAD_AS_SENT + b"abc"), ("close",)]]), "-i")
    assert code == 0
    assert out == HEAD_AS_SENT + b"abc"


def test_interim_heads_come_first() -> None:
    # RFC 9110 15.2: a client must accept 1xx responses before the final one (curl test 1436-like).
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
    reply = interim + b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD_AS_SENT + b"abc"
    code, out = get(ScriptedServer([[EXPECT, ("send", reply), ("close",)]]), "-i")
    assert code == 0
    assert out == reply


def test_interim_head_in_a_read_of_its_own() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    script = [EXPECT, ("send", interim), ("sleep", 0.2), ("send", HEAD_AS_SENT + b"abc"), ("close",)]
    code, out = get(ScriptedServer([script]), "-i")
    assert (code, out) == (0, interim + HEAD_AS_SENT + b"abc")


def test_trailers_follow_the_body() -> None:
    # RFC 9112 7.1.2: trailer fields after the last chunk; curl -i prints them after the body.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n"
    body = b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n"
    trailers = b"X-Sum:abcde\r\nX-Other: 1\r\n\r\n"
    code, out = get(ScriptedServer([[EXPECT, ("send", head + body + trailers), ("close",)]]), "-i")
    assert code == 0
    assert out == head + b"abcde" + trailers


def test_trailers_split_across_reads() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    data = head + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    code, out = get(ScriptedServer([[EXPECT, ("drip", data, 0.001), ("close",)]]), "-i")
    assert (code, out) == (0, head + b"hello" + b"X-T: 1\r\n\r\n")


def test_bare_lf_heads_are_printed_as_received() -> None:
    # curl test 34-style heads end their lines with LF alone.
    head = b"HTTP/1.1 200 OK\nContent-Length: 2\nConnection: close\n\n"
    code, out = get(ScriptedServer([[EXPECT, ("send", head + b"ok"), ("close",)]]), "-i")
    assert (code, out) == (0, head + b"ok")


def test_pipelined_heads_each_as_sent() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-N:1\r\n\r\n"
    second = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-N:2\r\n\r\n"
    third = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-N:3\r\n\r\n"
    replies = first + b"a" + second + b"1\r\nb\r\n0\r\nX-T:t\r\n\r\n" + third
    server = ScriptedServer([[EXPECT, EXPECT, EXPECT, ("send", replies), ("close",)]])
    code, out = get(server, "-i", "--keep-alive", "--pipeline", "3", paths=("/a", "/b", "/c"))
    assert code == 1  # the 404 is reported as a failed URL
    assert out == first + b"a" + second + b"b" + b"X-T:t\r\n\r\n" + third


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_bodiless_statuses_then_the_next_response(status: bytes) -> None:
    empty = b"HTTP/1.1 " + status + b"\r\nX-E:e\r\n\r\n"
    after = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = ScriptedServer([[EXPECT, ("send", empty), EXPECT, ("send", after), ("close",)]])
    code, out = get(server, "-i", "--keep-alive", paths=("/a", "/b"))
    assert out == empty + after


def test_head_request_prints_the_head_as_sent() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length:10\r\nX-A:b\r\n\r\n"
    code, out = get(ScriptedServer([[EXPECT, ("send", head), ("close",)]]), "-I")
    assert (code, out) == (0, head)
