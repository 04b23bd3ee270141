"""``RedisQueue``: a crawl's ``FoundQueue`` shared by every worker of a job in Redis.

A crawl worker runs the single-process crawl's ``CrawlFrontier`` (the same link
extraction, scope, traps and robots.txt); only where found URLs wait differs.
``pop`` gives the entries the feeder thread read from the worker's partitions;
``add`` hands a found URL to the thread, which queues it with "add to seen and
enqueue if new" (``redisjob.ENQUEUE``: one Lua call a batch, the seen set as
8-byte fingerprints); ``done`` ends the page's entry with its record, after its
links were handed over, so the job's count of unended URLs never touches 0
while a page's links are on their way.  No method blocks or talks to Redis.
"""

from __future__ import annotations

from collections import deque

from crawlsel.crawlqueue import Found
from crawlsel.errors import InvalidURL
from crawlsel.hashtable import HashSet64
from crawlsel.models import FetchResult, Target, request_key
from crawlsel.redisentries import Entry, crawl_field, crawl_parts, end_item, handback_item
from crawlsel.redisfeeder import Feeder
from crawlsel.sources import parse_url

POP_BATCH = 256  # entries taken from the feeder at once: one lock a batch, not a URL


class RedisQueue:
    __slots__ = ("_feeder", "_local", "_popped", "_sent", "_max_deliveries", "_retry_delay")

    def __init__(self, feeder: Feeder, *, max_deliveries: int, retry_delay: float) -> None:
        self._feeder = feeder
        self._local: deque[Entry] = deque()  # taken from the feeder, not popped yet
        self._popped: dict[int, tuple[Found, Entry]] = {}  # id(found) -> its entry, until done
        self._sent = HashSet64()  # requests handed to Redis by this worker: not sent twice
        self._max_deliveries = max_deliveries
        self._retry_delay = retry_delay

    def add(self, found: Found) -> bool:
        target = found.target
        if not self._sent.add(request_key(target)):
            return False
        self._feeder.add_found(target, crawl_field(target.url, found.depth, found.via, found.parent))
        return True  # (whether it is new to the job, Redis decides)

    def see(self, target: Target) -> bool:
        if not self._sent.add(request_key(target)):
            return False
        self._feeder.add_found(target, None)
        return True

    def pop(self) -> Found | None:
        while True:
            if not self._local:
                self._local.extend(self._feeder.pop(POP_BATCH))
                if not self._local:
                    return None
            entry = self._local.popleft()
            url, depth, via, parent = crawl_parts(entry.url)
            try:
                target = parse_url(url)
            except InvalidURL as exc:  # enqueue checks URLs; a stream written by hand may not
                record = FetchResult(url=url, index=0, error=str(exc), error_kind="invalid", attempts=0)
                self._feeder.settle_one(end_item(entry, record, self._max_deliveries, self._retry_delay))
                continue
            self._sent.add(request_key(target))
            found = Found(target, depth, parent, via)
            self._popped[id(found)] = (found, entry)
            return found

    def done(self, found: Found, record: FetchResult) -> None:
        held = self._popped.pop(id(found), None)
        if held is not None:
            item = end_item(held[1], record, self._max_deliveries, self._retry_delay)
            self._feeder.settle_one(item)

    def flush(self) -> None:
        pass  # the feeder takes the turn's ends and found URLs on its next turn

    def input_ready(self) -> None:
        """The feeder's pipe is readable (entries arrived, or the job is done): drain it."""
        self._feeder.drain_wake()

    @property
    def ready(self) -> bool:
        return bool(self._local) or bool(self._feeder.inbox)

    @property
    def wait_fd(self) -> int | None:
        return None if self.ready or self.exhausted else self._feeder.wake_r

    @property
    def exhausted(self) -> bool:
        feeder = self._feeder
        if feeder.fatal is not None:
            return True
        return feeder.done and not self.ready and not self._popped

    def close(self) -> None:
        """The run ended: entries popped and not done, and those not popped, go back."""
        back = [handback_item(entry) for _, entry in self._popped.values()]
        back += [handback_item(entry) for entry in self._local]
        self._popped.clear()
        self._local.clear()
        self._feeder.close(back)
