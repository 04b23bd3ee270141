"""Where a crawl keeps the URLs it found and has not fetched yet, and the seen set.

``CrawlFrontier`` decides what to queue (scope, robots, traps); a ``FoundQueue``
keeps it: ``add`` is "add to the seen set and queue if new" as one step, so a
shared queue (Redis, many workers) makes it atomic where it lives.
``LocalQueue`` is one process's: a deque and compact fingerprints in memory,
mirrored to a ``CrawlState`` file with ``--state``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, NamedTuple, Protocol

from crawlsel.errors import InvalidURL
from crawlsel.hashtable import HashSet64
from crawlsel.models import FetchResult, Target, request_key
from crawlsel.sources import parse_url

if TYPE_CHECKING:
    from crawlsel.crawlstate import CrawlState


class Found(NamedTuple):
    """A URL waiting to be fetched, with how the crawl reached it."""

    target: Target
    depth: int
    parent: str | None
    via: str


class FoundQueue(Protocol):
    def add(self, found: Found) -> bool:
        """Queue a URL unless it was seen before; False if it was."""
        ...

    def see(self, target: Target) -> bool:
        """Count a URL as seen without queueing it (a seed handed out at once, a
        redirect's target); False if it was seen before."""
        ...

    def pop(self) -> Found | None: ...

    def done(self, found: Found, record: FetchResult) -> None:
        """A popped URL ended (its page saved, its links queued) with this record."""
        ...

    def input_ready(self) -> None:
        """``wait_fd`` became readable."""
        ...

    def flush(self) -> None:
        """Make the turn's changes durable or visible (once per loop turn)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether ``pop`` may give a URL now."""
        ...

    @property
    def wait_fd(self) -> int | None:
        """A descriptor that becomes readable when URLs arrive from elsewhere, or None."""
        ...

    @property
    def exhausted(self) -> bool:
        """Nothing queued here and nothing more will arrive from elsewhere."""
        ...


class LocalQueue:
    __slots__ = ("_queue", "_seen", "_state")

    def __init__(self, state: CrawlState | None = None) -> None:
        self._queue: deque[Found] = deque()
        self._seen = HashSet64()  # 16 bytes a URL
        self._state = state
        if state is not None:
            self._resume(state)

    def _resume(self, state: CrawlState) -> None:
        """Queue again what an earlier run of this crawl had not finished."""
        for row in state.rows():
            try:
                target = parse_url(row.url)
            except InvalidURL:
                continue
            self._seen.add(request_key(target))
            if not row.done:
                self._queue.append(Found(target, row.depth, row.parent, row.via))

    def add(self, found: Found) -> bool:
        if not self._seen.add(request_key(found.target)):
            return False
        self._queue.append(found)
        if self._state is not None:
            self._state.queued(found.target.url, found.depth, found.parent, found.via)
        return True

    def see(self, target: Target) -> bool:
        return self._seen.add(request_key(target))

    def seed(self, found: Found) -> None:
        """A seed handed out at once: written down so that a resumed crawl knows it."""
        if self._state is not None:
            self._state.queued(found.target.url, 0, None, found.via)

    def pop(self) -> Found | None:
        return self._queue.popleft() if self._queue else None

    def done(self, found: Found, record: FetchResult) -> None:
        if self._state is not None:
            self._state.done(found.target.url)

    def input_ready(self) -> None:
        pass

    def flush(self) -> None:
        if self._state is not None:
            self._state.flush()

    @property
    def ready(self) -> bool:
        return bool(self._queue)

    @property
    def wait_fd(self) -> int | None:
        return None

    @property
    def exhausted(self) -> bool:
        return not self._queue
