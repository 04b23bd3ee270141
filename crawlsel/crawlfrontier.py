"""``CrawlFrontier``: the frontier of ``crawl``, which grows as pages arrive.

Seeds are read lazily, as ``fetch`` reads its list, and handed out first
(breadth first: depth 0 before depth 1).  Each page that ends is scanned for
links (``crawl.scanner``: in a helper process when a core is free, so fetching goes
on meanwhile; its record is reported once its links are known); the new ones that pass ``crawl.scope`` and are not
traps are queued once per normalised URL.  Before the first request to an
origin its robots.txt is handed out, and the origin's URLs wait for the answer
(``crawl.robots``); a disallowed URL becomes a skipped record, never a request.
The frontier learns every URL's end in ``finished`` and returns the record the
run reports, with how the URL was found (``via``, ``depth``, ``parent``) and how
many links it gave.  Nothing here touches a socket.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from crawlsel.crawl.robots import RobotsRules, product_token, rules_from
from crawlsel.crawl.scanner import PageScan, Scanner, ScanRequest
from crawlsel.crawl.scope import Scope, trap
from crawlsel.crawl.sitemaps import MAX_SITEMAP_BYTES, parse_sitemap
from crawlsel.crawlqueue import Found, FoundQueue, LocalQueue
from crawlsel.errors import InvalidURL
from crawlsel.frontier import Work
from crawlsel.hashtable import HashSet64
from crawlsel.models import FetchResult, Target, request_key
from crawlsel.sources import Record, WaitForInput, parse_url
from crawlsel.urls import normalize

Origin = tuple[str, str, int]
SITEMAP_FILE = "sitemap-file"  # the via of a sitemap document itself (its pages: "sitemap")
MAX_SITEMAP_FILES = 1_000  # per crawl: an index may name 50,000, a crawl needs far fewer
DelayCallback = Callable[[Origin, float], None]


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
        queue: FoundQueue | None = None,
        scan_helper: bool | None = None,
        sitemaps: bool = False,
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
        self._queue: FoundQueue = queue or LocalQueue()
        self._front: deque[Found] = deque()  # released by their robots.txt: they were next
        self._refused = HashSet64()  # left out (scope, traps): counted once each
        self._known = HashSet64()  # link strings decided before: most links are seen ones
        self._scanner = Scanner(requisites, helper=scan_helper)
        self._scanning: dict[int, tuple[Found, FetchResult]] = {}  # saved, links not known yet
        self._records: list[FetchResult] = []  # scanned: reported through take()
        self._inflight: dict[int, Found] = {}
        self._next_index = 0
        self._pages = 0  # pages handed out (robots.txt files not counted)
        self._per_host: dict[str, int] = {}
        self._robots: dict[Origin, RobotsRules | list[Found]] = {}  # rules, or who waits for them
        self._sitemaps = sitemaps
        self._sitemap_origins: set[Origin] = set()
        self._sitemap_files = 0
        self.counts = CrawlCounts()

    # --- the Frontier protocol -------------------------------------------------

    def take(self, room: int) -> list[Work]:
        taken: list[Work] = list(self._records)
        room += len(taken)
        self._records.clear()
        while len(taken) < room:
            if self._open and self._waiting is None:
                record = self._next_seed()
                if record is not None:
                    taken.append(record)  # an invalid seed line: it ends with its record
                    continue
            found = self._front.popleft() if self._front else self._queue.pop()
            if found is None:
                if self._open and self._waiting is None:
                    continue  # read on: the seeds are not done
                break
            self._hand_out(found, taken)
        return taken

    @property
    def ready(self) -> bool:
        return (
            bool(self._records)
            or bool(self._front)
            or self._queue.ready
            or (self._open and self._waiting is None)
        )

    @property
    def wait_fd(self) -> int | None:
        if self._scanning and not self._records and not self._front and not self._queue.ready:
            return self._scanner.fd  # (None when scanning in the loop: nothing to wait for)
        return self._queue.wait_fd if self._waiting is None else self._waiting.fd

    def input_ready(self) -> None:
        self._waiting = None  # (a seed pipe with no line yet says so again)
        self._queue.input_ready()
        self._collect()

    def relay_delays(self, on_delay: DelayCallback) -> None:
        """Crawl-delays go to ``on_delay`` from now on (``crawl --workers``: the parent's router)."""
        self._on_delay = on_delay

    def add(self, target: Target) -> bool:
        self.scope.add_seed(target)
        return self._queue.add(Found(target, 0, None, "seed"))

    def finished(self, result: FetchResult) -> FetchResult | None:
        found = self._inflight.pop(result.index, None)
        if found is None:
            return result  # an invalid seed line, or a scanned page's record coming back
        if found.via == "robots":
            return self._robots_answered(found, result)
        if found.via == SITEMAP_FILE:
            return self._sitemap_answered(found, result)
        if not result.skipped:
            self.counts.by_depth[found.depth] = self.counts.by_depth.get(found.depth, 0) + 1
        if result.location is not None:  # a redirect: its target is a URL of the crawl
            self._discover(result.location, found.depth, found.target.url, "redirect")
        elif result.final_url and result.final_url != found.target.url:
            self._mark_seen(result.final_url)  # a redirect's target is fetched once too
        if result.path is None:
            return self._scanned(found, result, None)
        self._scanning[result.index] = (found, result)
        base = result.final_url or found.target.url
        self._scanner.submit(
            ScanRequest(
                result.index,
                result.path,
                base,
                result.content_type,
                result.link_fields,
                found.depth + 1,
                not self._open,
            )
        )
        if self._scanner.fd is None:  # scanned at once, in this process
            self._collect()
            for i, record in enumerate(self._records):
                if record.index == result.index:
                    return self._records.pop(i)
        return None  # reported through take() once its links are known

    @property
    def exhausted(self) -> bool:
        return (
            not self._open
            and not self._front
            and not self._inflight
            and not self._scanning
            and not self._records
            and self._queue.exhausted
        )

    def flush(self) -> None:
        self._collect()
        self._queue.flush()

    def close(self) -> None:
        """Stop the scanning process (pages it had not scanned are scanned again on resume)."""
        self._scanner.close()

    @property
    def total(self) -> int | None:
        return self._next_index if self.exhausted else None

    # --- handing out -------------------------------------------------------------

    def _next_seed(self) -> Work | None:
        """Read one seed line: queue it (None), or an invalid line's record to hand out."""
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
        self.add(record)  # a resumed crawl's seeds are seen, and still its scope
        return None

    def _hand_out(self, found: Found, taken: list[Work]) -> None:
        target = found.target
        if self._sitemaps and not self._robots_on and target.origin not in self._sitemap_origins:
            self._find_sitemaps(target, [], None)
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
        if found.via not in ("robots", SITEMAP_FILE) and not self._within_limits(target):
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
        self._queue.see(target)
        return Found(target, 0, None, "robots")

    def _robots_answered(self, found: Found, result: FetchResult) -> FetchResult:
        origin = found.target.origin
        rules = rules_from(result, self._agent)
        waiting = self._robots.get(origin)
        self._robots[origin] = rules
        if isinstance(waiting, list):
            self._front.extend(waiting)  # they were next: they stay next
        if rules.delay and self._on_delay is not None:
            self._on_delay(origin, rules.delay)
        if self._sitemaps:
            self._find_sitemaps(found.target, rules.sitemaps, found.target.url)
        if result.error is not None and rules.allows("/"):
            # No robots.txt (4xx) means no rules, not a failed crawl.
            result = result._replace(error=None, error_kind=None)
        return result._replace(via="robots")

    # --- sitemaps (--sitemaps) ------------------------------------------------------

    def _find_sitemaps(self, at: Target, named: list[str], parent: str | None) -> None:
        """Queue an origin's sitemaps: those its robots.txt names, and /sitemap.xml."""
        self._sitemap_origins.add(at.origin)
        for url in [*named, f"{at.scheme}://{at.host_header}/sitemap.xml"]:
            self._sitemap_file(url, parent)

    def _sitemap_file(self, url: str, parent: str | None) -> None:
        if self._sitemap_files >= MAX_SITEMAP_FILES:
            return
        try:
            target = parse_url(normalize(url))
        except InvalidURL:
            return
        # A sitemap on a host of the crawl is read even above --no-parent's folders or
        # outside --include: what it lists is checked against the whole scope.
        if not trap(target) and self.scope.refusal(target, 0) not in ("host", "depth"):
            if self._queue.add(Found(target, 0, parent, SITEMAP_FILE)):
                self._sitemap_files += 1

    def _sitemap_answered(self, found: Found, result: FetchResult) -> FetchResult:
        """The URLs of a fetched sitemap become seeds (in scope), its nested sitemaps files
        to fetch; a sitemap that is not there (4xx) is no failure of the crawl.  Done once
        its URLs are queued (a shared queue ends its entry then)."""
        record = self._sitemap_record(found, result._replace(via="sitemap", parent=found.parent))
        self._queue.done(found, record)
        return record

    def _sitemap_record(self, found: Found, result: FetchResult) -> FetchResult:
        if result.path is None:
            status = result.status or 0
            return result._replace(error=None, error_kind=None) if 400 <= status < 500 else result
        try:
            with open(result.path, "rb") as file:
                sitemap = parse_sitemap(file.read(MAX_SITEMAP_BYTES + 1), url=result.final_url or "")
        except OSError as exc:
            return result._replace(error=f"cannot read the sitemap: {exc.strerror}", error_kind="sitemap")
        for url in sitemap.urls:
            self._discover(url, 0, found.target.url, "sitemap")
        for url in sitemap.sitemaps:
            self._sitemap_file(url, found.target.url)
        result = result._replace(links=len(sitemap.urls) + len(sitemap.sitemaps))
        if sitemap.error:
            result = result._replace(error=f"sitemap: {sitemap.error}", error_kind="sitemap")
        return result

    # --- discovery -----------------------------------------------------------------

    def _collect(self) -> None:
        for key, scan in self._scanner.collect():
            found, result = self._scanning.pop(key)
            self._records.append(self._scanned(found, result, scan))

    def _scanned(self, found: Found, result: FetchResult, scan: PageScan | None) -> FetchResult:
        """Queue a page's links, then count it done (a resumed crawl rescans a page whose
        links were not all queued); its record, with how many links it had."""
        n = 0
        if scan is not None:
            depth = found.depth + 1
            parent = found.target.url
            for url in scan.links:
                self._discover(url, depth, parent, "link")
            for url in scan.requisites:
                self._discover(url, depth, parent, "requisite")
            n = scan.named
        record = result._replace(via=found.via, depth=found.depth, parent=found.parent, links=n)
        self._queue.done(found, record)
        return record

    def _discover(self, url: str, depth: int, parent: str | None, via: str) -> bool:
        if url in self._known:
            return False  # queued or left out before, for a reason its depth does not change
        try:
            target = parse_url(normalize(url))
        except InvalidURL:
            self._known.add(url)
            return False
        if trap(target):
            if self._refused.add(request_key(target)):
                self.counts.traps += 1
            self._known.add(url)
            return False
        refusal = self.scope.refusal(target, depth, requisite=via == "requisite")
        if refusal is not None:
            if self._refused.add(request_key(target)):
                self.counts.out_of_scope += 1
            if refusal != "depth" and not self._open:  # (a seed still to come may widen the scope)
                self._known.add(url)
            return False
        self._known.add(url)
        return self._queue.add(Found(target, depth, parent, via))

    def _mark_seen(self, url: str) -> None:
        try:
            self._queue.see(parse_url(url))
        except InvalidURL:
            pass


def _referer(parent: str | None, target: Target) -> str | None:
    """The page a link was found on, as Scrapy's default policy sends it: never from
    an https page to an http URL (no-referrer-when-downgrade)."""
    if parent is None or (target.scheme == "http" and parent.startswith("https:")):
        return None
    return parent
