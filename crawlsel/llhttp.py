"""What crawlsel asks of llhttp (httptools) and how it reads llhttp's refusals.

llhttp is strict by default; ``new_parser`` turns on the leniencies curl has
where the end of a message stays unambiguous.  ``merge_content_lengths`` makes
repeated, equal Content-Length fields one (llhttp refuses them), and
``llhttp_message`` words llhttp's error for a user.
"""

from __future__ import annotations

import re

import httptools

from crawlsel.errors import ProtocolError


def new_parser(listener: object) -> httptools.HttpResponseParser:
    """llhttp with the leniencies curl has where the end of a message stays
    unambiguous: bare LF line ends in the head (curl tests 34, 47, 1033), spaces
    after a chunk size (RFC 9112 7.1.1 BWS), and Content-Length with chunked,
    where chunked wins and the connection closes after (RFC 9112 6.3).  Lenient
    headers unfold obs-fold into one space, the MUST of RFC 9112 5.2 for user
    agents (it also stops llhttp refusing odd bytes in field values, which curl
    accepts too; framing checks stay strict)."""
    parser = httptools.HttpResponseParser(listener)
    parser.set_dangerous_leniencies(
        lenient_headers=True,
        lenient_optional_cr_before_lf=True,
        lenient_spaces_after_chunk_size=True,
        lenient_chunked_length=True,
    )
    return parser


def merge_content_lengths(data: bytes) -> bytes:
    """A head whose Content-Length fields all say one number, with one field left.

    RFC 9112 6.3 lets a recipient accept ``3, 3`` or two lines of ``3`` as one
    length, as curl does; two different numbers leave the body's end unknown.
    """
    end = data.find(b"\r\n\r\n")
    end = end + 4 if end >= 0 else data.find(b"\n\n") + 2
    if end < 2:
        raise ProtocolError("invalid HTTP response: repeated Content-Length")
    lines = data[:end].split(b"\n")
    values: list[bytes] = []
    kept: list[bytes] = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"content-length":
            values += [v.strip() for v in value.split(b",")]
            if len(values) > len(value.split(b",")):
                continue  # a later Content-Length line: dropped once checked
            line = name + b": " + values[0] + (b"\r" if line.endswith(b"\r") else b"")
        kept.append(line)
    if len(set(values)) != 1:
        shown = ", ".join(v.decode("latin-1") for v in dict.fromkeys(values))
        raise ProtocolError(f"invalid HTTP response: different Content-Length values ({shown})")
    return b"\n".join(kept) + data[end:]


# A chunk-size line whose extension has whitespace after ";" or around "=", which
# RFC 9112 7.1.1 allows (BWS) and llhttp refuses; only the size is kept.
_SPACED_CHUNK_EXT = re.compile(rb"(?:(?<=\n)|\A)[0-9A-Fa-f]+[ \t]*;[^\n]*?[ \t][^\n]*\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.")
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def _follows(before: bytes, last_piece: bytes) -> bool:
    """Whether llhttp can have stopped right after ``before``: the last body piece it
    gave from this chunk of bytes (and a line end), or, when it gave none, nothing but
    a line end or a head."""
    if last_piece:
        return before.endswith((last_piece + b"\r\n", last_piece + b"\n", last_piece))
    return not before.strip(b"\r\n") or (before.startswith(b"HTTP/") and before.endswith(b"\n\n"))


def spaced_chunk_line(data: bytes, at_least: int, last_piece: bytes) -> tuple[int, bytes] | None:
    """Where llhttp stopped on a chunk extension it refused, and the line without it.

    llhttp does not say where it stopped: the line is the first spaced chunk line at
    or after ``at_least`` (the body bytes it took from ``data``) that follows the last
    piece of chunk data it gave.  ``None`` when no line fits: the refusal stands.
    """
    for match in _SPACED_CHUNK_EXT.finditer(data, at_least):
        start = match.start()
        if _follows(data[:start].replace(b"\r\n\r\n", b"\n\n"), last_piece):
            line = match.group()
            size = line.split(b";", 1)[0].rstrip(b" \t")
            return start, size + (b"\r\n" if line.endswith(b"\r\n") else b"\n")
    return None


def pipelined_head(data: bytes, at_least: int, last_piece: bytes) -> int:
    """Where the head llhttp refused for its repeated Content-Length begins in ``data``,
    right after the response before it, or -1."""
    for match in _STATUS_LINE.finditer(data, max(at_least, 1)):
        if data[: match.start()].endswith(last_piece):
            return match.start()
    return -1


def llhttp_message(exc: Exception) -> str:
    """llhttp's reason, its first letter lowered unless the first word is a header
    name ("Content-Length can't be present with Transfer-Encoding")."""
    text = str(exc)
    if not text:
        return type(exc).__name__
    if "-" in text.split(" ", 1)[0]:
        return text
    return text[:1].lower() + text[1:]
