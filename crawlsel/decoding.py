"""Content- and Transfer-Encoding decoding as the body streams, bounded by the size a user allows.

gzip (every member of a multi-member stream), deflate (zlib-wrapped, or raw as
some servers send it) and identity, stacked at most ``MAX_CODINGS`` deep.  Output
is produced in slices of at most ``limit + 1`` bytes, so a small bomb that would
inflate to gigabytes fails with ``TooLarge`` after at most ``limit`` bytes of work.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from crawlsel.errors import DecodeError, TooLarge

MAX_CODINGS = 5  # curl's limit on stacked Content-Encodings
_SLICE = 256 * 1024  # decompress at most this much output per call


class _Inflater:
    """One coding layer."""

    __slots__ = ("_coding", "_obj", "_first")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._first = True
        self._obj = self._new()

    def _new(self) -> zlib._Decompress:
        if self._coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS)

    def decode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Yield output lazily, one slice at a time, so the caller can stop early."""
        for data in chunks:
            while data:
                try:
                    chunk = self._obj.decompress(data, _SLICE)
                except zlib.error:
                    if self._coding == "deflate" and self._first:
                        # "deflate" without its zlib wrapper, as some servers send it.
                        self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                        self._first = False
                        continue
                    raise DecodeError(f"corrupt {self._coding} data") from None
                self._first = False
                if chunk:
                    yield chunk
                if self._obj.unconsumed_tail:
                    data = self._obj.unconsumed_tail
                elif self._obj.eof and self._obj.unused_data:
                    data = self._obj.unused_data
                    if self._coding != "gzip":
                        raise DecodeError(f"data after the end of the {self._coding} stream")
                    self._obj = self._new()  # the next gzip member
                else:
                    data = b""

    def finish(self) -> None:
        if not self._obj.eof:
            raise DecodeError(f"{self._coding} data ends before its end")


def codings(value: str | None) -> list[str]:
    """The codings of a Content-Encoding or Transfer-Encoding list, lower-cased, in order.

    "identity" and "none" (sent by some servers for identity, and accepted as such
    by curl) name no coding.
    """
    if not value:
        return []
    listed = (c.strip().lower() for c in value.split(","))
    return [c for c in listed if c and c not in ("identity", "none")]


class BodyDecoder:
    """Undoes codings as the body streams: ``applied`` lists them in the order the
    server applied them (Content-Encoding first, then Transfer-Encoding, RFC 9112
    6.1), each as (coding, "content" | "transfer")."""

    __slots__ = ("_layers", "_limit", "decoded")

    def __init__(self, applied: list[tuple[str, str]], limit: int) -> None:
        if len(applied) > MAX_CODINGS:
            raise DecodeError(f"more than {MAX_CODINGS} stacked codings")
        for coding, kind in applied:
            if coding not in ("gzip", "x-gzip", "deflate", "chunked"):
                raise DecodeError(f"unsupported {kind} coding {coding!r}")
        if any(coding == "chunked" for coding, _ in applied):
            # llhttp only de-chunks a final "chunked"; an earlier one would leave
            # chunk framing in the page.
            raise DecodeError("transfer coding 'chunked' is not the last one")
        # Decoding undoes the codings in the reverse order of their application.
        self._layers = [_Inflater("gzip" if c == "x-gzip" else c) for c, _ in reversed(applied)]
        self._limit = limit
        self.decoded = 0

    @property
    def identity(self) -> bool:
        return not self._layers

    def decode(self, data: bytes) -> Iterator[bytes]:
        chunks: Iterable[bytes] = (data,)
        for layer in self._layers:
            chunks = layer.decode(chunks)
        for chunk in chunks:
            self.decoded += len(chunk)
            if self.decoded > self._limit:
                raise TooLarge(f"body larger than --max-size ({self._limit:,} bytes)")
            yield chunk

    def finish(self) -> None:
        """The body ended: every layer must have reached the end of its stream."""
        for layer in self._layers:
            layer.finish()
