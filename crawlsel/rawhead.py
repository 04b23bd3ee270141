"""The bytes of each response head and trailer section exactly as received, for ``get -i``.

curl -i prints what the server sent: interim 1xx heads, field lines as spelled
(``X-A:b`` stays ``X-A:b``), the trailers after the body.  llhttp hands over
parsed fields only, so a ``RawHeads`` is fed the same bytes as the parser, just
before it, and cuts them at the places llhttp has already found valid: a head
ends at its first empty line; the body is skipped by the framing llhttp chose
(``body``), so only a head or trailer section is ever held, never a page.
"""

from __future__ import annotations

from enum import Enum


class _Part(Enum):
    HEAD = "head"  # before the end of a head (interim ones included)
    FRAMING = "framing"  # head taken, waiting for llhttp to say how the body is framed
    LENGTH = "length"  # skipping a Content-Length body
    CHUNK_LINE = "chunk line"
    CHUNK_DATA = "chunk data"  # skipping a chunk and the line end after it
    TRAILERS = "trailers"
    REST = "rest"  # a close-delimited body, or bytes after a HEAD response: all skipped


class RawHeads:
    """Feed every byte received on a connection; take heads and trailers as llhttp finds them."""

    __slots__ = ("_buffer", "_part", "_remaining", "_trailers")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._part = _Part.HEAD
        self._remaining = 0
        self._trailers = b""

    def feed(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self._skip()

    def take_head(self) -> bytes:
        """The next final head with the interim heads before it, as sent (llhttp saw its end)."""
        taken = bytearray()
        while True:
            end = _after_empty_line(self._buffer)
            if end < 0:  # cannot happen once llhttp has parsed the head; keep what there is
                end = len(self._buffer)
            block = bytes(self._buffer[:end])
            self._cut(end)
            taken += block
            if end == 0 or not _is_interim(block):
                break
        self._part = _Part.FRAMING
        return bytes(taken)

    def body(self, *, length: int | None, chunked: bool, none: bool) -> None:
        """How the body of the head just taken ends, as llhttp decided."""
        if none:
            self._part = _Part.HEAD
        elif chunked:
            self._part = _Part.CHUNK_LINE
        elif length is not None:
            self._part, self._remaining = _Part.LENGTH, length
        else:
            self._part = _Part.REST
        self._skip()

    def after_head_only(self) -> None:
        """A response to HEAD: llhttp is replaced and the connection not reused; skip the rest."""
        self._part = _Part.REST
        self._skip()

    def take_trailers(self) -> bytes:
        """The trailer section of the chunked body just completed (b"" for other bodies)."""
        self._skip()
        trailers, self._trailers = self._trailers, b""
        return trailers

    def _cut(self, n: int) -> None:
        """The first ``n`` bytes are done with: dropped."""
        del self._buffer[:n]

    def take_message(self) -> bytes:
        """The whole response just completed, as received (a ``WireTap`` keeps it)."""
        return b""

    def _skip(self) -> None:
        """Drop body bytes as far as the buffer goes: a page is never held here."""
        buffer = self._buffer
        while buffer:
            part = self._part
            if part is _Part.HEAD or part is _Part.FRAMING:
                return
            if part is _Part.REST:
                self._cut(len(buffer))
            elif part is _Part.LENGTH:
                n = min(self._remaining, len(buffer))
                self._cut(n)
                self._remaining -= n
                if self._remaining == 0:
                    self._part = _Part.HEAD
            elif part is _Part.CHUNK_LINE:
                end = buffer.find(b"\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(b" \t\r") or b"0", 16)
                self._cut(end + 1)
                self._part, self._remaining = (_Part.CHUNK_DATA, size) if size else (_Part.TRAILERS, 0)
            elif part is _Part.CHUNK_DATA:
                n = min(self._remaining, len(buffer))
                self._cut(n)
                self._remaining -= n
                if self._remaining:
                    return
                end = buffer.find(b"\n")
                if end < 0:
                    return
                self._cut(end + 1)
                self._part = _Part.CHUNK_LINE
            else:  # TRAILERS: the field lines and the empty line that ends them
                end = _after_empty_line(buffer)
                if end < 0:
                    return
                self._trailers = bytes(buffer[:end])
                self._cut(end)
                self._part = _Part.HEAD


class WireTap(RawHeads):
    """``RawHeads`` that keeps every byte of each response, body and all, for ``--warc``:
    the framing llhttp found cuts the stream into one message per response."""

    __slots__ = ("_message",)

    def __init__(self) -> None:
        super().__init__()
        self._message = bytearray()

    def _cut(self, n: int) -> None:
        self._message += self._buffer[:n]
        del self._buffer[:n]

    def take_message(self) -> bytes:
        message = bytes(self._message)
        self._message.clear()
        return message


def _after_empty_line(buffer: bytearray) -> int:
    """The offset just after the first empty line (CRLF or bare LF), or -1.

    An empty first line counts: a trailer section with no fields is just that.
    """
    for end in (0, 1):
        if buffer.startswith(b"\r\n"[end:]):
            return 2 - end
    at = 0
    while True:
        end = buffer.find(b"\n", at)
        if end < 0:
            return -1
        if buffer.startswith(b"\n", end + 1):
            return end + 2
        if buffer.startswith(b"\r\n", end + 1):
            return end + 3
        at = end + 1


def _is_interim(head: bytes) -> bool:
    """Whether a head's status line says 1xx ("HTTP/1.1 103 Early Hints")."""
    parts = head.split(None, 2)
    return len(parts) > 1 and parts[1][:1] == b"1"
