"""``CrawlFrontier``: the frontier of ``crawl``, which grows as pages arrive.

Seeds are read lazily, as ``fetch`` reads its list, and handed out first
(breadth first: depth 0 before depth 1).  Each page that ends is scanned for
links (``crawl.links``); the new ones that pass ``crawl.scope`` and are not
traps are queued once per normalised URL.  Before the first request to an
origin its robots.txt is handed out, and the origin's URLs wait for the answer
(``crawl.robots``); a disallowed URL becomes a skipped record, never a request.
The frontier learns every URL's end in ``finished`` and returns the record the
run reports, with how the URL was found (``via``, ``depth``, ``parent``) and how
many links it gave.  Nothing here touches a socket.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import crawlsel.crawl.links as extract
from crawlsel.crawl.robots import RobotsRules, product_token, rules_from
from crawlsel.crawl.scope import Scope, trap
from crawlsel.errors import InvalidURL
from crawlsel.frontier import Work
from crawlsel.hashtable import HashSet64
from crawlsel.models import FetchResult, Target, request_key
from crawlsel.sources import Record, WaitForInput, parse_url
from crawlsel.urls import normalize

if TYPE_CHECKING:
    from crawlsel.crawlstate import CrawlState

SNIFF_BYTES = 512  # WHATWG MIME sniffing looks at the first 512 bytes
_CSS = re.compile(r"^\s*text/css\b", re.I)

Origin = tuple[str, str, int]
DelayCallback = Callable[[Origin, float], None]


class Found(NamedTuple):
    """A URL waiting to be fetched, with how the crawl reached it."""

    target: Target
    depth: int
    parent: str | None
    via: str


class CrawlCounts:
    """What the crawl left out and why, and its pages by depth, for the summary."""

    __slots__ = ("robots", "out_of_scope", "traps", "over_limit", "by_depth")

    def __init__(self) -> None:
        self.robots = 0
        self.out_of_scope = 0
        self.traps = 0
        self.over_limit = 0
        self.by_depth: dict[int, int] = {}


class CrawlFrontier:
    def __init__(
        self,
        seeds: Iterable[Record],
        scope: Scope,
        *,
        user_agent: str,
        robots: bool = True,
        requisites: bool = False,
        max_pages: int | None = None,
        max_per_host: int | None = None,
        on_delay: DelayCallback | None = None,
        state: CrawlState | None = None,
    ) -> None:
        self._seeds: Iterator[Record] = iter(seeds)
        self._open = True
        self._waiting: WaitForInput | None = None
        self.scope = scope
        self._agent = product_token(user_agent)
        self._robots_on = robots
        self._requisites = requisites
        self._max_pages = max_pages
        self._max_per_host = max_per_host
        self._on_delay = on_delay
        self._queue: deque[Found] = deque()
        self._seen = HashSet64()
        self._inflight: dict[int, Found] = {}
        self._next_index = 0
        self._pages = 0  # pages handed out (robots.txt files not counted)
        self._per_host: dict[str, int] = {}
        self._robots: dict[Origin, RobotsRules | list[Found]] = {}  # rules, or who waits for them
        self.counts = CrawlCounts()
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

    # --- the Frontier protocol -------------------------------------------------

    def take(self, room: int) -> list[Work]:
        taken: list[Work] = []
        while len(taken) < room:
            found = self._next_seed() if self._open and self._waiting is None else None
            if found is None:
                if not self._queue:
                    if self._open and self._waiting is None:
                        continue  # a seed line that gave nothing: read on
                    break
                found = self._queue.popleft()
            if isinstance(found, Found):
                self._hand_out(found, taken)
            else:
                taken.append(found)  # an invalid seed line: it ends with its record
        return taken

    @property
    def ready(self) -> bool:
        return bool(self._queue) or (self._open and self._waiting is None)

    @property
    def wait_fd(self) -> int | None:
        return None if self._waiting is None else self._waiting.fd

    def input_ready(self) -> None:
        self._waiting = None

    def add(self, target: Target) -> bool:
        return self._discover(target.url, 0, None, "seed", seed=True)

    def finished(self, result: FetchResult) -> FetchResult:
        found = self._inflight.pop(result.index, None)
        if found is None:
            return result  # an invalid seed line
        if found.via == "robots":
            return self._robots_answered(found, result)
        if self._state is not None:
            self._state.done(found.target.url)
        if not result.skipped:
            self.counts.by_depth[found.depth] = self.counts.by_depth.get(found.depth, 0) + 1
        if result.final_url and result.final_url != found.target.url:
            self._mark_seen(result.final_url)  # a redirect's target is fetched once too
        n = self._scan(found, result) if result.path is not None else 0
        return result._replace(via=found.via, depth=found.depth, parent=found.parent, links=n)

    @property
    def exhausted(self) -> bool:
        return not self._open and not self._queue and not self._inflight

    def flush(self) -> None:
        if self._state is not None:
            self._state.flush()

    @property
    def total(self) -> int | None:
        return self._next_index if self.exhausted else None

    # --- handing out -------------------------------------------------------------

    def _next_seed(self) -> Found | Work | None:
        try:
            record = next(self._seeds)
        except StopIteration:
            self._open = False
            return None
        if isinstance(record, WaitForInput):
            self._waiting = record
            return None
        if not isinstance(record, Target):  # an invalid line
            index = self._next_index
            self._next_index += 1
            return record._replace(index=index)
        self.scope.add_seed(record)  # a resumed crawl's seeds are seen, and still its scope
        if not self._seen.add(request_key(record)):
            return None
        if self._state is not None:
            self._state.queued(record.url, 0, None, "seed")
        return Found(record, 0, None, "seed")

    def _hand_out(self, found: Found, taken: list[Work]) -> None:
        target = found.target
        if self._robots_on and found.via != "robots":
            rules = self._robots.get(target.origin)
            if not isinstance(rules, RobotsRules):
                if rules is None:
                    self._robots[target.origin] = [found]
                    self._hand_out(self._robots_target(target), taken)
                else:
                    rules.append(found)
                return
            if not rules.allows(target.url):
                self.counts.robots += 1
                taken.append(self._skipped(found, "robots"))
                return
        if found.via != "robots" and not self._within_limits(target):
            self.counts.over_limit += 1
            return
        index = self._next_index
        self._next_index += 1
        self._inflight[index] = found
        taken.append(target._replace(index=index, referer=_referer(found.parent, target)))

    def _within_limits(self, target: Target) -> bool:
        if self._max_pages is not None and self._pages >= self._max_pages:
            return False
        if self._max_per_host is not None:
            done = self._per_host.get(target.host, 0)
            if done >= self._max_per_host:
                return False
            self._per_host[target.host] = done + 1
        self._pages += 1
        return True

    def _skipped(self, found: Found, reason: str) -> FetchResult:
        index = self._next_index
        self._next_index += 1
        target = found.target
        self._inflight[index] = found  # finished() is told of it like any other
        return FetchResult(
            url=target.url, index=index, skipped=True, skip_reason=reason, attempts=0, final_url=target.url
        )

    # --- robots.txt ----------------------------------------------------------------

    def _robots_target(self, page: Target) -> Found:
        url = f"{page.scheme}://{page.host_header}/robots.txt"
        target = parse_url(url)
        self._seen.add(request_key(target))
        return Found(target, 0, None, "robots")

    def _robots_answered(self, found: Found, result: FetchResult) -> FetchResult:
        origin = found.target.origin
        rules = rules_from(result, self._agent)
        waiting = self._robots.get(origin)
        self._robots[origin] = rules
        if isinstance(waiting, list):
            self._queue.extendleft(reversed(waiting))  # they were next: they stay next
        if rules.delay and self._on_delay is not None:
            self._on_delay(origin, rules.delay)
        if result.error is not None and rules.allows("/"):
            # No robots.txt (4xx) means no rules, not a failed crawl.
            result = result._replace(error=None, error_kind=None)
        return result._replace(via="robots")

    # --- discovery -----------------------------------------------------------------

    def _scan(self, found: Found, result: FetchResult) -> int:
        """Queue the links of a saved page; how many it had."""
        assert result.path is not None
        base = result.final_url or found.target.url
        page_links: list[str] = []
        requisites: list[str] = []
        follow = True
        if result.link_fields:
            page_links, follow = extract.header_links(result.link_fields, base)
        content_type = result.content_type
        if _CSS.match(content_type or "") or (content_type is None and result.path.endswith(".css")):
            if self._requisites:
                requisites = extract.extract_css(_read(result.path), base)
        elif extract.looks_like_html(
            content_type, _read(result.path, SNIFF_BYTES) if not content_type else b""
        ):
            page = extract.extract_file(result.path, base, requisites=self._requisites)
            follow = follow and page.follow
            page_links += page.links
            requisites = page.requisites
        else:
            return 0
        if not follow:
            page_links = []
        depth = found.depth + 1
        parent = found.target.url
        for url in page_links:
            self._discover(url, depth, parent, "link")
        for url in requisites:
            self._discover(url, depth, parent, "requisite")
        return len(page_links) + len(requisites)

    def _discover(self, url: str, depth: int, parent: str | None, via: str, *, seed: bool = False) -> bool:
        try:
            target = parse_url(normalize(url))
        except InvalidURL:
            return False
        if not self._seen.add(request_key(target)):
            return False
        if trap(target):
            self.counts.traps += 1
            return False
        if seed:
            self.scope.add_seed(target)
        elif self.scope.refusal(target, depth, requisite=via == "requisite") is not None:
            self.counts.out_of_scope += 1
            return False
        self._queue.append(Found(target, depth, parent, via))
        if self._state is not None:
            self._state.queued(target.url, depth, parent, via)
        return True

    def _mark_seen(self, url: str) -> None:
        try:
            self._seen.add(request_key(parse_url(url)))
        except InvalidURL:
            pass


def _referer(parent: str | None, target: Target) -> str | None:
    """The page a link was found on, as Scrapy's default policy sends it: never from
    an https page to an http URL (no-referrer-when-downgrade)."""
    if parent is None or (target.scheme == "http" and parent.startswith("https:")):
        return None
    return parent


def _read(path: str, limit: int = -1) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(limit)
    except OSError:
        return b""
