"""Batches between ``fetch --workers N``'s parent and its worker processes, over pipes.

A frame is a 4-byte length and a pickled value (a list of ``Target``s one way, a
message of records the other): one write and one read carry many URLs, so that
nothing happens per page on the parent's side of a pipe.  ``targets_from_pipe`` is
the worker's URL list: it reads its pipe without blocking and yields
``WaitForInput`` when no whole batch has arrived, exactly as ``sources`` reads
``-``, so a plain ``ListFrontier`` runs over it.  Nothing here touches the network.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable, Iterator
from typing import Any

from crawlsel.sources import Record, WaitForInput

_HEAD = struct.Struct("<I")
READ_BYTES = 1 << 16


def frame(value: Any) -> bytes:
    """One frame: the length, then the pickled value."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(data)) + data


class FrameReader:
    """Bytes read from a pipe in, whole frames' values out."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        pending = self._pending
        pending += data
        values = []
        start = 0
        while len(pending) - start >= 4:
            (size,) = _HEAD.unpack_from(pending, start)
            end = start + 4 + size
            if end > len(pending):
                break
            values.append(pickle.loads(pending[start + 4 : end]))
            start = end
        del pending[:start]
        return values

    @property
    def partial(self) -> bool:
        """Bytes of an unfinished frame are held (the writer stopped in the middle of one)."""
        return bool(self._pending)


def targets_from_pipe(
    fd: int,
    on_message: Callable[[Any], None] | None = None,
    on_wait: Callable[[bool], None] | None = None,
) -> Iterator[Record]:
    """The ``Target``s the parent sends, read without blocking until it closes the pipe.

    A frame that is not a list of URLs is a message for the worker (``on_message``:
    a crawl's Crawl-delay for an origin).  ``on_wait(True)`` when the worker has taken
    everything sent so far and waits for more, ``on_wait(False)`` when more came.
    """
    os.set_blocking(fd, False)
    reader = FrameReader()
    waiting = False
    try:
        while True:
            try:
                data = os.read(fd, READ_BYTES)
            except BlockingIOError:
                if not waiting and on_wait is not None:
                    waiting = True
                    on_wait(True)
                yield WaitForInput(fd)
                continue
            if not data:
                return
            if waiting and on_wait is not None:
                waiting = False
                on_wait(False)
            for value in reader.feed(data):
                if isinstance(value, list):
                    yield from value
                elif on_message is not None:
                    on_message(value)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """A blocking write of every byte (a worker's records: the parent always reads)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
