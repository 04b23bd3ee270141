"""``ResponseHead``: a final response's status line and fields, as the parser found them.

Apart from ``http11`` (which makes them) because every layer above reads them:
the job's policy, the writer, the reporter, the archive.
"""

from __future__ import annotations

from typing import Any


class ResponseHead:
    """A final response's head.  A plain class with slots, not a dataclass: importing
    dataclasses loads inspect, about 5 ms of every ``crawlsel get`` start."""

    __slots__ = (
        "status",
        "reason",
        "version",
        "headers",
        "keep_alive",
        "content_length",
        "chunked",
        "transfer_codings",
        "raw",
        "raw_trailers",
        "wire",
    )

    def __init__(
        self,
        status: int,
        reason: str,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        # Transfer codings to undo, in the order applied, without a final "chunked" (llhttp removes it).
        transfer_codings: tuple[str, ...] = (),
        # As received, interim 1xx heads first, when the parser was given a RawHeads (get -i).
        raw: bytes = b"",
        raw_trailers: bytes = b"",
        # The whole message as received (head and coded body), when --warc asked for it.
        wire: bytes = b"",
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.transfer_codings = transfer_codings
        self.raw = raw
        self.raw_trailers = raw_trailers
        self.wire = wire

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseHead) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(self.__slots__, self._fields(), strict=True)
        )
        return f"ResponseHead({shown})"

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
