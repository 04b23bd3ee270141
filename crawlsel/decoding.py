"""Content- and Transfer-Encoding decoding as the body streams, bounded by the size a user allows.

gzip (every member of a multi-member stream), deflate (zlib-wrapped, or raw as
some servers send it), identity, and br and zstd when their libraries are
installed (``crawlsel[brotli]``, ``crawlsel[zstd]``: brotli, and the standard
library's compression.zstd or its backport), stacked at most ``MAX_CODINGS`` deep.  Output
is produced in slices of at most ``limit + 1`` bytes, so a small bomb that would
inflate to gigabytes fails with ``TooLarge`` after at most ``limit`` bytes of work.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

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


# The module that decodes each optional coding; imported only when a body needs it.
_OPTIONAL = {"br": "brotli", "zstd": "compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # "backports" itself missing
        return False


def accept_encoding() -> str:
    """The Accept-Encoding of a compressed request: br and zstd only when they can be decoded."""
    return ", ".join(["gzip", "deflate"] + [c for c, module in _OPTIONAL.items() if _installed(module)])


class _Brotli:
    """One br layer (RFC 7932); output bounded per call like zlib's."""

    __slots__ = ("_obj", "_error")

    def __init__(self, module: Any) -> None:
        self._obj, self._error = module.Decompressor(), module.error

    def decode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        obj = self._obj
        try:
            for data in chunks:
                if obj.is_finished():
                    if data:
                        raise DecodeError("data after the end of the br stream")
                    continue
                chunk = obj.process(data, output_buffer_limit=_SLICE)
                while True:
                    if chunk:
                        yield chunk
                    if obj.can_accept_more_data() or obj.is_finished():
                        break
                    chunk = obj.process(b"", output_buffer_limit=_SLICE)
        except self._error:
            raise DecodeError("corrupt br data") from None

    def finish(self) -> None:
        if not self._obj.is_finished():
            raise DecodeError("br data ends before its end")


class _Zstd:
    """One zstd layer (RFC 8878): frames one after another, output bounded per call."""

    __slots__ = ("_module", "_obj")

    def __init__(self, module: Any) -> None:
        self._module, self._obj = module, module.ZstdDecompressor()

    def decode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for data in chunks:
                while True:
                    obj = self._obj
                    chunk = obj.decompress(data, _SLICE)
                    data = b""
                    if chunk:
                        yield chunk
                    if obj.eof:
                        if not obj.unused_data:
                            break
                        data = obj.unused_data  # the next frame
                        self._obj = self._module.ZstdDecompressor()
                    elif obj.needs_input:
                        break
        except self._module.ZstdError:
            raise DecodeError("corrupt zstd data") from None

    def finish(self) -> None:
        if not self._obj.eof:
            raise DecodeError("zstd data ends before its end")


def _layer(coding: str) -> _Inflater | _Brotli | _Zstd:
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("gzip" if coding == "x-gzip" else coding)
    module = importlib.import_module(_OPTIONAL[coding])
    return _Brotli(module) if coding == "br" else _Zstd(module)


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
            if coding in _OPTIONAL and kind == "transfer":
                raise DecodeError(f"unsupported transfer coding {coding!r}")  # not one (RFC 9112 7)
            if coding in _OPTIONAL and not _installed(_OPTIONAL[coding]):
                extra = "brotli" if coding == "br" else "zstd"
                raise DecodeError(f"{kind} coding {coding!r} needs pip install 'crawlsel[{extra}]'")
            if coding not in ("gzip", "x-gzip", "deflate", "chunked", *_OPTIONAL):
                raise DecodeError(f"unsupported {kind} coding {coding!r}")
        if any(coding == "chunked" for coding, _ in applied):
            # llhttp only de-chunks a final "chunked"; an earlier one would leave
            # chunk framing in the page.
            raise DecodeError("transfer coding 'chunked' is not the last one")
        # Decoding undoes the codings in the reverse order of their application.
        self._layers = [_layer(c) for c, _ in reversed(applied)]
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
