"""``get``'s bodies to one stream (stdout or ``-o FILE``) in the order the URLs were given.

Bodies complete in any order; the one whose turn it is goes straight to the
stream, later ones wait in spooled temporary files.  Every response's body is
written, whatever its status (as curl): what to show is ``get``'s decision.
A reader that went away (``crawlsel get ... | head``) makes writing fail with
``WriteError`` and sets ``closed``; nothing is raised past that.
"""

from __future__ import annotations

from typing import IO

from crawlsel.errors import WriteError
from crawlsel.models import Target


class OrderedOutput:
    """Bodies to one stream (stdout) in input order while they complete in any order.

    The body whose turn it is goes straight to the stream; later ones wait in
    spooled temporary files (in memory up to 4 MiB each, then on disk).
    """

    SPOOL_IN_MEMORY = 4 * 1024 * 1024

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._next = 0
        self._parts: dict[int, _OutputPart] = {}
        self._finished: set[int] = set()
        self.closed = False  # the reader went away (``crawlsel get ... | head``)

    def open(self, target: Target, head: object = None) -> _OutputPart:
        """Where the body of ``target`` goes (``head`` is not looked at: see above)."""
        part = _OutputPart(self, direct=target.index == self._next)
        self._parts[target.index] = part
        return part

    def finished(self, index: int) -> None:
        """Every URL's result passes here, saved or not, so that the order moves on."""
        self._finished.add(index)
        if self.closed:
            return
        try:
            while self._next in self._finished:
                self._finished.discard(self._next)
                part = self._parts.pop(self._next, None)
                if part is not None:
                    part.flush_to(self._stream)
                self._next += 1
            upcoming = self._parts.get(self._next)
            if upcoming is not None:
                upcoming.flush_to(self._stream)
                upcoming.direct = True
            self._stream.flush()
        except BrokenPipeError:
            self.closed = True

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise WriteError("standard output is closed")
        try:
            self._stream.write(data)
        except BrokenPipeError:
            self.closed = True
            raise WriteError("standard output is closed") from None
        except OSError as exc:
            raise WriteError(f"cannot write to standard output: {exc.strerror or exc}") from None


class _OutputPart:
    __slots__ = ("_owner", "direct", "_spool")

    def __init__(self, owner: OrderedOutput, direct: bool) -> None:
        self._owner = owner
        self.direct = direct
        self._spool: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.direct:
            self._owner._write(data)
            return
        if self._spool is None:
            import tempfile  # only `get` with bodies completing out of order

            self._spool = tempfile.SpooledTemporaryFile(max_size=OrderedOutput.SPOOL_IN_MEMORY)
        self._spool.write(data)

    def flush_to(self, stream: IO[bytes]) -> None:
        if self._spool is not None:
            self._spool.seek(0)
            while chunk := self._spool.read(1 << 20):
                stream.write(chunk)
            self._spool.close()
            self._spool = None

    def commit(self) -> str | None:
        return None

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
