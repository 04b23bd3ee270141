"""Sans-IO HTTP/1.1 responses: bytes in, events out (request bytes: ``request.py``).

Nothing here opens a socket.  ``ResponseParser`` wraps httptools (llhttp, the parser of Node.js) and adds what
llhttp leaves to its caller: which request each response answers (so pipelined
responses arriving in one recv are split at the right byte), responses to HEAD,
the end of a close-delimited body at EOF, and limits on the response head.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools

from crawlsel import llhttp
from crawlsel.errors import ConnectionClosed, ProtocolError
from crawlsel.llhttp import llhttp_message, merge_content_lengths, new_parser

if TYPE_CHECKING:
    from crawlsel.rawhead import RawHeads

# Limits on the response head.  Node.js (llhttp's user) caps the whole head at
# 16 KiB; curl allows 100 KiB per header line and 300 KiB in total.  We take
# curl's figures (as curl accepts them) and nginx's default of 10 interim 1xx.
MAX_HEADER_LINE = 100 * 1024
MAX_HEAD_BYTES = 300 * 1024
MAX_HEADER_LINES = 5000
MAX_INTERIM_RESPONSES = 10


class UnexpectedData(ProtocolError):
    """Bytes arrived that answer no request: the connection must close (RFC 9112 9.6)."""


class UnrequestedResponse(UnexpectedData):
    """What followed the last expected response begins like a status line: a server
    answering twice.  The responses before it stand (as curl); the connection closes."""


@dataclass(slots=True)
class ResponseHead:
    status: int
    reason: str
    version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    content_length: int | None
    chunked: bool
    # Transfer codings to undo, in the order applied, without a final "chunked" (llhttp removes it).
    transfer_codings: tuple[str, ...] = ()
    # As received, interim 1xx heads first, when the parser was given a RawHeads (get -i).
    raw: bytes = b""
    raw_trailers: bytes = b""

    def header(self, name: str) -> str | None:
        """The last value of a header, decoded as Latin-1, or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in reversed(self.headers):
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def field(self, name: str) -> str | None:
        """All field lines of a name as one comma-separated list (RFC 9110 5.3), or None."""
        wanted = name.lower().encode("latin-1")
        values = [value for key, value in self.headers if key.lower() == wanted]
        return b", ".join(values).decode("latin-1") if values else None


# What ``feed`` found, in order, for the caller to take with ``take_events`` and act
# on after llhttp has returned: nothing a writer or a size check raises ever
# travels through the C parser (as h11's next_event, not callbacks).
HEAD = "head"  # (HEAD, ResponseHead): a final response's head
BODY = "body"  # (BODY, bytes): body bytes, transfer framing removed
COMPLETE = "complete"  # (COMPLETE, ResponseHead): that response ended
Event = tuple[str, Any]


class _HeadResponseDone(Exception):
    """Raised inside httptools to stop it reading a body after a response to HEAD."""


class _SecondResponse(Exception):
    """Raised inside httptools when bytes that answer no request parse as a status line."""


class ResponseParser:
    """Feeds bytes of one connection to llhttp and records what it finds as events.

    Call ``expect(method)`` for every request written, in order; ``feed`` for every
    chunk received; ``feed_eof`` when the server closed; after each, ``take_events``
    (also when they raised: the events before the fault stand).  Errors are raised
    as ``ProtocolError`` (or ``ConnectionClosed``); the connection must then close.
    """

    __slots__ = (
        "_events",
        "_parser",
        "_pending",
        "_started",
        "_headers_done",
        "_interim",
        "_interim_count",
        "_reason",
        "_headers",
        "_head_bytes",
        "_head_size",
        "_head",
        "body_bytes",
        "_raw",
        "_unrequested",
    )

    def __init__(self, raw: RawHeads | None = None) -> None:
        self._events: list[Event] = []
        self._raw = raw  # keeps the heads as sent, for get -i
        self._parser = new_parser(self)
        self._pending: deque[str] = deque()
        self._unrequested = False  # a message began that answers no request
        self._reset_message()
        self._interim_count = 0

    def _reset_message(self) -> None:
        self._started = False
        self._headers_done = False
        self._interim = False
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0  # bytes fed while the head is incomplete: bounds an endless line
        self._head_size = 0  # bytes of complete header lines
        self._head: ResponseHead | None = None
        self.body_bytes = 0

    @property
    def response_started(self) -> bool:
        """Whether any byte of the response now expected has arrived."""
        return self._started

    def expect(self, method: str) -> None:
        self._pending.append(method)

    def take_events(self) -> list[Event]:
        """The events of the last ``feed`` or ``feed_eof``, in order; each once."""
        events = self._events
        self._events = []
        return events

    def feed(self, data: bytes | memoryview) -> None:
        """Parse one chunk into events.

        A Content-Length response followed in the same chunk by bytes that are no
        status line fails (its length was wrong) instead of completing.
        """
        if self._raw is not None:
            self._raw.feed(data)
        try:
            self._feed(data)
            if self._unrequested:
                # A prefix of a status line that llhttp accepted so far: a second answer.
                raise UnrequestedResponse("server sent a response that was not requested")
        except UnrequestedResponse:
            raise
        except UnexpectedData:
            events = self._events
            if events and events[-1][0] is COMPLETE and events[-1][1].content_length is not None:
                # More bytes than the Content-Length promised: the length was
                # wrong, so the page is not trusted (RFC 9112 6.3).
                head = events.pop()[1]
                raise ProtocolError(
                    f"server sent more than the {head.content_length:,} bytes of its Content-Length"
                ) from None
            raise

    def _feed(self, data: bytes | memoryview) -> None:
        begins_here = not self._started and not self._events
        events_before = len(self._events)
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._raise_from_callback(exc)
        except httptools.HttpParserUpgrade:
            raise ProtocolError("server switched protocols without being asked") from None
        except httptools.HttpParserError as exc:
            if not self._started and not self._pending:
                # llhttp refuses bytes after a "Connection: close" response.
                raise UnexpectedData("server sent data after the end of the response") from None
            if bytes(data[:2]) in (b"\x15\x03", b"\x16\x03"):
                raise ProtocolError("server answered with TLS: is this an https:// URL?") from None
            reason = str(exc)
            if "Duplicate Content-Length" in reason or "character in Content-Length" in reason:
                # A head that began in this chunk (first, or after a pipelined
                # response): llhttp can start again on it with the repeated, equal
                # lengths made one (different ones raise).
                at = self._head_start(bytes(data), events_before, begins_here)
                merged = merge_content_lengths(bytes(data[at:])) if at >= 0 else b""
                if at >= 0 and merged != data[at:]:
                    self._parser = new_parser(self)
                    self._reset_message()
                    self._feed(merged)
                    return
            if reason.startswith("Invalid character in chunk extensions") and self._resync_chunks(
                bytes(data), events_before
            ):
                return
            raise ProtocolError(f"invalid HTTP response: {llhttp_message(exc)}") from None
        if not self._headers_done and self._started and self._head_bytes > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")

    def _body_fed(self, events_before: int) -> tuple[int, bytes]:
        """The body bytes llhttp gave from the chunk being fed, and the last piece."""
        pieces = [e[1] for e in self._events[events_before:] if e[0] is BODY]
        return sum(map(len, pieces)), pieces[-1] if pieces else b""

    def _head_start(self, data: bytes, events_before: int, begins_here: bool) -> int:
        """Where the head being parsed began in ``data``, or -1 if before it."""
        if any(e[0] is COMPLETE for e in self._events[events_before:]):
            return -1 if self._head_bytes else llhttp.pipelined_head(data, *self._body_fed(events_before))
        return 0 if begins_here else -1

    def _resync_chunks(self, data: bytes, events_before: int) -> bool:
        """Go on past a chunk line llhttp refused for its spaced extension (RFC 9112
        7.1.1 allows the spaces): a new llhttp, put in a chunked body by a head it
        is fed quietly, takes the rest of ``data`` with that line's extension cut."""
        found = llhttp.spaced_chunk_line(data, *self._body_fed(events_before))
        if found is None or self._head is None:
            return False
        start, line = found
        kept = (self._head, self._headers, self._reason, self._raw)
        self._raw = None  # get -i's copy of the heads has no place for the quiet one
        self._parser = new_parser(self)
        self._parser.feed_data(llhttp.CHUNKED_HEAD)
        del self._events[-1]  # the quiet head's event
        self._head, self._headers, self._reason, self._raw = kept
        self._feed(line + data[data.index(b"\n", start) + 1 :])
        return True

    def _raise_from_callback(self, exc: Exception) -> None:
        inner = exc.__context__
        if isinstance(inner, _HeadResponseDone):
            # llhttp cannot be told that a response to HEAD has no body, so it was
            # stopped at the end of the head; it has to be replaced to go on.
            self._parser = new_parser(self)
            self._finish_message()
            return
        if isinstance(inner, _SecondResponse):
            raise UnrequestedResponse("server sent a response that was not requested") from None
        if isinstance(inner, Exception):
            raise inner from None
        raise ProtocolError(f"invalid HTTP response: {exc}") from None

    def feed_eof(self) -> None:
        """The server closed: finish a close-delimited body or report what is missing."""
        head = self._head
        if head is not None and not self._interim:
            if head.content_length is None and not head.chunked:
                self._finish_message()
                return
            if head.chunked:
                raise ConnectionClosed(
                    f"server closed the connection before the last chunk "
                    f"({self.body_bytes:,} body bytes received)",
                    response_started=True,
                )
            raise ConnectionClosed(
                f"server closed the connection after {self.body_bytes:,} of "
                f"{head.content_length:,} body bytes",
                response_started=True,
            )
        if self._started:
            raise ConnectionClosed(
                "server closed the connection in the middle of the response head",
                response_started=True,
            )
        if self._pending:
            raise ConnectionClosed(
                "server closed the connection without sending a response",
                response_started=False,
            )

    # --- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._pending:
            # Bytes after the last expected response: llhttp goes on, to tell a
            # status line (on_status) from bytes that are no HTTP (its error).
            self._unrequested = True
            return
        self._started = True

    def on_status(self, reason: bytes) -> None:
        if self._unrequested:
            raise _SecondResponse()
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a trailer field of a chunked body: not part of the page
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise ProtocolError(f"response header line longer than {MAX_HEADER_LINE // 1024} KiB")
        if len(self._headers) >= MAX_HEADER_LINES:
            raise ProtocolError(f"response has more than {MAX_HEADER_LINES:,} header lines")
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._unrequested:
            raise _SecondResponse()  # a status line with no reason phrase
        parser = self._parser
        status = parser.get_status_code()
        self._headers_done = True
        if 100 <= status < 200:
            # Interim responses (100 Continue, 103 Early Hints) are skipped; llhttp
            # reports them as complete messages with no body.
            self._interim = True
            self._interim_count += 1
            if self._interim_count > MAX_INTERIM_RESPONSES:
                raise ProtocolError(f"more than {MAX_INTERIM_RESPONSES} interim 1xx responses")
            return
        content_length = None
        transfer: list[bytes] = []
        for name, value in self._headers:
            lname = name.lower()
            if lname == b"content-length":
                content_length = int(value)  # llhttp has already validated it
            elif lname == b"transfer-encoding":
                transfer.append(value)
        codings: tuple[str, ...] = ()
        chunked = False
        if transfer:
            # Repeated lines are one list (RFC 9110 5.3); llhttp de-chunks only a
            # final "chunked", anything else is delimited by the close (RFC 9112 6.1).
            listed = [c.strip().lower() for c in b",".join(transfer).decode("latin-1").split(",")]
            listed = [c for c in listed if c and c != "identity"]
            chunked = bool(listed) and listed[-1] == "chunked"
            codings = tuple(listed[:-1] if chunked else listed)
        is_head = self._pending[0] == "HEAD"
        head = ResponseHead(
            status=status,
            reason=self._reason.decode("latin-1"),
            version=parser.get_http_version(),
            headers=self._headers,
            # Read here: httptools 0.9 answers False once the message is complete.
            # After HEAD we cannot see where the head ended inside llhttp's buffer,
            # so that connection is not reused.
            keep_alive=parser.should_keep_alive()
            and not is_head
            and not (chunked and content_length is not None),
            content_length=content_length,
            chunked=chunked,
            transfer_codings=codings,
        )
        self._head = head
        if self._raw is not None:
            self._record_raw(head, is_head)
        self._events.append((HEAD, head))
        if is_head:
            raise _HeadResponseDone()

    def _record_raw(self, head: ResponseHead, is_head: bool) -> None:
        raw = self._raw
        assert raw is not None
        head.raw = raw.take_head()
        if is_head:
            raw.after_head_only()
        else:
            close_delimited = bool(head.transfer_codings) and not head.chunked
            raw.body(
                length=None if close_delimited else head.content_length,
                chunked=head.chunked,
                none=head.status in (204, 304),
            )

    def on_body(self, data: bytes) -> None:
        self.body_bytes += len(data)
        self._events.append((BODY, data))

    def on_message_complete(self) -> None:
        if self._interim:
            self._reset_message()
            self._started = True
            return
        self._finish_message()

    def _finish_message(self) -> None:
        head = self._head
        assert head is not None
        self._pending.popleft()
        if self._raw is not None:
            head.raw_trailers = self._raw.take_trailers()
        self._interim_count = 0
        self._reset_message()
        self._events.append((COMPLETE, head))
