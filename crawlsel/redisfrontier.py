"""``RedisFrontier``: the Frontier protocol over a job shared in Redis (``crawlsel worker``).

The loop's side of the worker.  ``take`` pops entries the feeder thread read
(``redisfeeder.Feeder``); ``finished`` decides each entry's end and queues it;
``flush`` (once per loop turn) hands the turn's ends to the thread, which
acknowledges them in one Lua call.  No method blocks or talks to Redis: when
nothing is ready, ``wait_fd`` is the feeder's pipe, readable when work arrives or
the job is done.

An entry's end (the semantics the README states):

- a record (saved, or failed for good, or skipped): XACK, the record to
  ``{p}:results`` and ``{p}:latest`` -- only after the page is saved, since the
  dispatcher reports a URL after its file was renamed into place;
- a transient failure (connect, reset, timeout, DNS, HTTP 429 or 5xx, after the
  worker's own ``--retries``): the entry waits in ``{p}:retry`` for ``--retry-delay``
  doubled per delivery, then goes back to its stream; on its ``--max-deliveries``-th
  delivery it goes to the dead-letter stream with its last error instead.
"""

from __future__ import annotations

from crawlsel.errors import InvalidURL
from crawlsel.frontier import Work
from crawlsel.models import FetchResult, InvalidLine, Target
from crawlsel.redisentries import Entry, end_item, handback_item
from crawlsel.redisfeeder import Feeder
from crawlsel.sources import parse_url


class RedisFrontier:
    __slots__ = (
        "_feeder",
        "_handed",
        "_seq",
        "_max_deliveries",
        "_retry_delay",
        "ready",
        "wait_fd",
        "exhausted",
        "total",
    )

    def __init__(self, feeder: Feeder, *, max_deliveries: int, retry_delay: float) -> None:
        self._feeder = feeder
        self._handed: dict[int, Entry] = {}  # index -> entry, handed to the dispatcher
        self._seq = 0
        self._max_deliveries = max_deliveries
        self._retry_delay = retry_delay
        self.ready = False
        self.wait_fd: int | None = feeder.wake_r
        self.exhausted = False
        self.total: int | None = None

    def take(self, room: int) -> list[Work]:
        taken: list[Work] = []
        for entry in self._feeder.pop(room):
            self._seq += 1
            try:
                taken.append(parse_url(entry.url, index=self._seq))
            except InvalidURL as exc:  # enqueue checks lines; a stream written by hand may not
                taken.append(InvalidLine(entry.url, str(exc), "redis", 0, self._seq))
            self._handed[self._seq] = entry
        self._settle()
        return taken

    def input_ready(self) -> None:
        self._feeder.drain_wake()
        self._settle()

    def add(self, target: Target) -> bool:
        """A list's job finds no URLs (a redirect is followed by the dispatcher); a crawl's
        worker uses ``CrawlFrontier`` over a ``redisqueue.RedisQueue`` instead."""
        return False

    def finished(self, result: FetchResult) -> FetchResult:
        entry = self._handed.pop(result.index, None)
        if entry is not None:
            # Straight to the feeder's outbox: a URL failed outside a response turn
            # (a refused connection) is not followed by a flush; the thread's next turn
            # settles it all the same.
            self._feeder.settle_one(end_item(entry, result, self._max_deliveries, self._retry_delay))
        return result

    def flush(self) -> None:
        # The feeder takes the ends on its next turn (every 10 ms while it holds work):
        # waking it at each loop turn would make a Redis call of a few entries each.
        pass

    def close(self) -> None:
        """The run ended (done, Ctrl-C or an error): entries not finished go back to their streams."""
        self.flush()
        back = [handback_item(e) for e in self._handed.values()]
        self._handed.clear()
        self._feeder.close(back)

    def _settle(self) -> None:
        feeder = self._feeder
        self.ready = bool(feeder.inbox)
        self.exhausted = feeder.fatal is not None or (feeder.done and not self.ready and not self._handed)
        self.wait_fd = None if self.ready or self.exhausted else feeder.wake_r
