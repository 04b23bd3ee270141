"""The sans-IO protocol layer: request bytes, and responses fed in every possible split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlsel.errors import ConnectionClosed, ProtocolError
from crawlsel.http11 import (
    BODY,
    COMPLETE,
    HEAD,
    ResponseHead,
    ResponseParser,
    UnexpectedData,
    UnrequestedResponse,
)
from crawlsel.request import RequestTemplate
from crawlsel.sources import parse_url


class Recorder:
    """Collects responses; completions arrive after the whole chunk, in order."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, bytes, ResponseHead]] = []
        self._bodies: list[bytearray] = []  # one per head not yet complete

    def response_head(self, head: ResponseHead) -> None:
        self._bodies.append(bytearray())

    def response_body(self, data: bytes) -> None:
        self._bodies[-1] += data

    def response_complete(self, head: ResponseHead) -> None:
        self.responses.append((head.status, bytes(self._bodies.pop(0)), head))


class RecordingParser:
    """A ResponseParser whose events, taken after every call (raised or not), go to a Recorder."""

    def __init__(self, rec: Recorder) -> None:
        self._parser = ResponseParser()
        self._rec = rec
        self.expect = self._parser.expect

    def feed(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        finally:
            self._hand_over()

    def feed_eof(self) -> None:
        try:
            self._parser.feed_eof()
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        for kind, value in self._parser.take_events():
            {
                HEAD: self._rec.response_head,
                BODY: self._rec.response_body,
                COMPLETE: self._rec.response_complete,
            }[kind](value)


def parse(data: bytes, *, methods: tuple[str, ...] = ("GET",), eof: bool = False, split: int = 0) -> Recorder:
    rec = Recorder()
    parser = RecordingParser(rec)
    for method in methods:
        parser.expect(method)
    pieces = [data[:split], data[split:]] if split else [data]
    for piece in pieces:
        if piece:
            parser.feed(piece)
    if eof:
        parser.feed_eof()
    return rec


# --- requests -----------------------------------------------------------------


def test_request_bytes() -> None:
    template = RequestTemplate("crawlsel/test", (("X-A", "1"),))
    request = template.render("GET", parse_url("http://Example.com:8080/a b?q=1#frag"), keep_alive=True)
    assert request == (
        b"GET /a%20b?q=1 HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"User-Agent: crawlsel/test\r\n"
        b"Accept: */*\r\n"
        b"Accept-Encoding: identity\r\n"
        b"X-A: 1\r\n"
        b"Connection: keep-alive\r\n\r\n"
    )


def test_request_default_port_and_ipv6_host_and_close() -> None:
    template = RequestTemplate("ua")
    assert b"Host: example.com\r\n" in template.render(
        "GET", parse_url("http://example.com:80/"), keep_alive=False
    )
    request = template.render("HEAD", parse_url("http://[::1]:8080"), keep_alive=False)
    assert request.startswith(b"HEAD / HTTP/1.1\r\nHost: [::1]:8080\r\n")
    assert request.endswith(b"Connection: close\r\n\r\n")


def test_user_header_replaces_and_removes_defaults() -> None:
    template = RequestTemplate("ua", (("user-agent", "mine"), ("Accept", "")))
    request = template.render("GET", parse_url("http://h/"), keep_alive=True)
    assert b"user-agent: mine\r\n" in request
    assert b"User-Agent" not in request
    assert b"Accept:" not in request


# --- responses ------------------------------------------------------------------

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
)
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: 1\r\n\r\nbody\r\n\r\nbody"
CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + LENGTH


@pytest.mark.parametrize(
    ("data", "eof", "status", "body"),
    [
        (LENGTH, False, 200, b"body\r\n\r\nbody"),
        (CHUNKED, False, 200, b"hello, world"),
        (CLOSE, True, 200, b"until the end"),
        (INTERIM, False, 200, b"body\r\n\r\nbody"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", False, 204, b""),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", False, 304, b""),
        (b"HTTP/1.0 200 OK\r\n\r\nold style", True, 200, b"old style"),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", False, 404, b""),
    ],
)
def test_framings(data: bytes, eof: bool, status: int, body: bytes) -> None:
    rec = parse(data, eof=eof)
    assert [(s, b) for s, b, _ in rec.responses] == [(status, body)]


def test_head_fields() -> None:
    ((status, _, head),) = parse(LENGTH).responses
    assert head.status == 200 and head.reason == "OK" and head.version == "1.1"
    assert head.content_length == 12 and not head.chunked and head.keep_alive
    assert head.header("x-a") == "1"
    assert head.header("missing") is None


def test_trailers_are_not_headers() -> None:
    ((_, _, head),) = parse(CHUNKED).responses
    assert head.chunked
    assert head.header("X-Trailer") is None


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_keep_alive_is_read_from_the_head(data: bytes, keep_alive: bool) -> None:
    ((_, _, head),) = parse(data).responses
    assert head.keep_alive is keep_alive


def test_head_response_has_no_body_and_is_not_reused() -> None:
    rec = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", methods=("HEAD",))
    ((status, body, head),) = rec.responses
    assert (status, body, head.content_length) == (200, b"", 500)
    assert head.keep_alive is False


def test_two_pipelined_responses_in_one_chunk_are_split() -> None:
    rec = parse(LENGTH + CHUNKED, methods=("GET", "GET"))
    assert [b for _, b, _ in rec.responses] == [b"body\r\n\r\nbody", b"hello, world"]


def test_bytes_after_the_last_expected_response_are_refused() -> None:
    with pytest.raises(UnexpectedData):
        parse(CHUNKED + b"HTTP/1.1 200 OK\r\n")


def test_bytes_after_connection_close_are_refused() -> None:
    with pytest.raises(UnexpectedData):
        parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nEXTRA")


@pytest.mark.parametrize("extra", [b"EXTRA", b"<html>", b"\x00\x01"])
def test_bytes_beyond_content_length_fail_that_response(extra: bytes) -> None:
    # In the same chunk, bytes that are no status line mean the length was wrong:
    # the response is not complete (saving it would save a truncated page).
    rec = Recorder()
    parser = RecordingParser(rec)
    parser.expect("GET")
    with pytest.raises(ProtocolError, match="more than the 12 bytes of its Content-Length"):
        parser.feed(LENGTH + extra)
    assert rec.responses == []


@pytest.mark.parametrize(
    "extra",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 204\r\n\r\n",  # no reason phrase
        b"HTTP/1.",  # a status line cut by the end of the read
    ],
)
def test_a_second_unrequested_response_leaves_the_first_standing(extra: bytes) -> None:
    # Issue 12: a server answering twice. curl saves the first response and closes.
    rec = Recorder()
    parser = RecordingParser(rec)
    parser.expect("GET")
    with pytest.raises(UnrequestedResponse):
        parser.feed(LENGTH + extra)
    assert [body for _, body, _ in rec.responses] == [b"body\r\n\r\nbody"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (LENGTH[:-3], "server closed the connection after 9 of 12 body bytes"),
        (CHUNKED[:-20], "server closed the connection before the last chunk (12 body bytes received)"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "server closed the connection in the middle of the response head"),
        (b"", "server closed the connection without sending a response"),
    ],
)
def test_eof_before_the_end_names_what_is_missing(data: bytes, message: str) -> None:
    with pytest.raises(ConnectionClosed) as info:
        parse(data, eof=True)
    assert str(info.value) == message
    assert info.value.response_started is bool(data)


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (101 * 1024) + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (400 * 1024),
        b"HTTP/1.1 100 Continue\r\n\r\n" * 11,
    ],
)
def test_invalid_responses_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(data)


def test_every_split_point_gives_the_same_result() -> None:
    stream = INTERIM + CHUNKED + LENGTH
    methods = ("GET", "GET", "GET")
    expected = [(s, b) for s, b, _ in parse(stream, methods=methods).responses]
    assert len(expected) == 3
    for split in range(1, len(stream)):
        got = [(s, b) for s, b, _ in parse(stream, methods=methods, split=split).responses]
        assert got == expected, split


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_any_chunking_of_the_stream_gives_identical_bytes(sizes: list[int]) -> None:
    stream = CHUNKED + LENGTH + INTERIM
    rec = Recorder()
    parser = RecordingParser(rec)
    for _ in range(3):
        parser.expect("GET")
    pos = 0
    for size in sizes * (len(stream) // sum(sizes) + 1):
        if pos >= len(stream):
            break
        parser.feed(stream[pos : pos + size])
        pos += size
    assert [b for _, b, _ in rec.responses] == [b"hello, world", b"body\r\n\r\nbody", b"body\r\n\r\nbody"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    rec = Recorder()
    parser = RecordingParser(rec)
    parser.expect("GET")
    try:
        parser.feed(data)
        parser.feed_eof()
    except ProtocolError:
        pass


def test_llhttp_messages_keep_header_names_as_spelt() -> None:
    # llhttp: "Content-Length can't be present with Transfer-Encoding" (RFC 9112 6.3).
    from crawlsel.llhttp import llhttp_message

    assert llhttp_message(Exception("Content-Length can't be present with Transfer-Encoding")) == (
        "Content-Length can't be present with Transfer-Encoding"
    )
    assert llhttp_message(Exception("Invalid character in chunk size")) == "invalid character in chunk size"


def test_content_length_with_chunked_is_chunked_and_not_reused() -> None:
    # RFC 9112 6.3 (3): Transfer-Encoding overrides Content-Length; close after.
    rec = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    (status, body, head) = rec.responses[0]
    assert body == b"abc"
    assert not head.keep_alive
