"""The frontier: the one place a run gets its work from and reports each URL's end to.

The dispatcher asks ``take(room)`` when it has room, and tells ``finished`` when a
URL ended with its one record; ``add`` puts newly found URLs in (crawl mode);
``exhausted`` says the run is over: nothing queued, nothing handed out and
unfinished, no source still open.  When a source is open but has nothing yet (a
pipe), ``wait_fd`` names a descriptor the loop watches, and ``input_ready`` is
called when it is readable: work that arrives from outside wakes the loop.

``ListFrontier`` is ``fetch``'s: URL lists read lazily, each URL once.  An on-disk
frontier (resumable crawls) or a shared one (Redis) is another class with these
methods; the dispatcher does not change.  Nothing here touches the network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from crawlsel.hashtable import HashSet64
from crawlsel.models import FetchResult, InvalidLine, Target, request_key
from crawlsel.sources import Record, WaitForInput

# An invalid line is handed out too, and a record a frontier decided itself (a URL
# robots.txt disallows): each ends with its record.
Work = Target | InvalidLine | FetchResult


@runtime_checkable
class Frontier(Protocol):
    """The dispatcher reads ``ready``, ``wait_fd`` and ``exhausted`` after every
    response: a plain attribute kept up to date satisfies each of these read-only
    properties, and costs no call."""

    def take(self, room: int) -> list[Work]:
        """At most ``room`` records to start now; fewer (or none) when no more are ready."""
        ...

    @property
    def ready(self) -> bool:
        """Whether ``take`` may return more now (without waiting for ``wait_fd``)."""
        ...

    @property
    def wait_fd(self) -> int | None:
        """A descriptor to watch before more work can be taken, or None."""
        ...

    def input_ready(self) -> None:
        """``wait_fd`` became readable."""
        ...

    def add(self, target: Target) -> bool:
        """Queue a URL found during the run; False if it was seen before."""
        ...

    def finished(self, result: FetchResult) -> FetchResult | None:
        """A URL handed out by ``take`` ended with ``result``; the record to report (a crawl
        adds how the URL was found), or None if the frontier hands it out later through
        ``take`` (a crawl reports a page once its links are known)."""
        ...

    def flush(self) -> None:
        """Make what was learned durable: called once per turn of the loop and at the end
        (an on-disk frontier commits; one in memory has nothing to do)."""
        ...

    @property
    def exhausted(self) -> bool:
        """Nothing to hand out, nothing handed out unfinished, no source still open."""
        ...

    @property
    def total(self) -> int | None:
        """How many records the run will give, once that is known."""
        ...


class ListFrontier:
    """URL lists read as room appears (a list of a million URLs is never held),
    URLs found later queued before the rest of the list, each request once.

    ``ready``, ``wait_fd``, ``exhausted`` and ``total`` are plain attributes kept
    by the methods that change them: the dispatcher reads them after every
    response, and a property is a Python call each time (``_settle``).
    """

    __slots__ = (
        "_source",
        "_open",
        "_waiting",
        "_found",
        "_seen",
        "_dedupe",
        "_handed",
        "_unfinished",
        "ready",
        "wait_fd",
        "exhausted",
        "total",
    )

    def __init__(self, records: Iterable[Record], *, dedupe: bool = True) -> None:
        self._source: Iterator[Record] = iter(records)
        self._open = True
        self._waiting: WaitForInput | None = None
        self._found: deque[Target] = deque()  # added during the run
        self._seen = HashSet64()  # requests handed out, for dedupe: 16 bytes a URL
        self._dedupe = dedupe
        self._handed = 0
        self._unfinished = 0
        self.ready = True
        self.wait_fd: int | None = None
        self.exhausted = False
        self.total: int | None = None

    def take(self, room: int) -> list[Work]:
        """Read at most ``room`` records; the repeats among them are dropped.

        A SourceError (a list that became unreadable) propagates to the run.
        """
        taken: list[Work] = []
        found = self._found
        while found and len(taken) < room:
            taken.append(found.popleft())
        reads = room - len(taken)
        seen = self._seen
        source = self._source
        dedupe = self._dedupe
        while reads > 0 and self._open and self._waiting is None:
            reads -= 1
            try:
                record = next(source)
            except StopIteration:
                self._open = False
                break
            if isinstance(record, WaitForInput):
                self._waiting = record
                break
            if dedupe and isinstance(record, Target) and not seen.add(request_key(record)):
                continue
            taken.append(record)
        self._handed += len(taken)
        self._unfinished += len(taken)
        if not self._open or self._waiting is not None:
            # (Open and not waiting, before as after: ready, no wait_fd, no total.)
            self._settle()
        return taken

    def input_ready(self) -> None:
        self._waiting = None
        self._settle()

    def add(self, target: Target) -> bool:
        if self._dedupe and not self._seen.add(request_key(target)):
            return False
        self._found.append(target)
        self._settle()
        return True

    def finished(self, result: FetchResult) -> FetchResult:
        self._unfinished -= 1
        if not self._unfinished and not self._open:
            self._settle()
        return result

    def flush(self) -> None:
        pass

    def _settle(self) -> None:
        """Derive the public attributes from the state (after each change that may move them)."""
        found, waiting = bool(self._found), self._waiting
        self.ready = found or (self._open and waiting is None)
        self.wait_fd = None if waiting is None else waiting.fd
        self.exhausted = not self._open and not found and self._unfinished == 0
        self.total = None if self._open or found else self._handed


def blocking_records(frontier: Frontier, slice_size: int = 256) -> Iterator[Work | WaitForInput]:
    """A frontier as the records a blocking engine reads one by one, waiting included."""
    while True:
        yield from frontier.take(slice_size)
        fd = frontier.wait_fd
        if fd is not None:
            yield WaitForInput(fd)  # the engine blocks on it
            frontier.input_ready()
        elif not frontier.ready:
            return
