"""Frozen records passed between modules: the run's configuration, a parsed URL, a result.

They are NamedTuples rather than frozen dataclasses: one is built per URL (two
with its result), and a tuple is built several times faster; the four classes
also define in 0.3 ms instead of 3.7 ms of every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from crawlsel import __version__

DEFAULT_USER_AGENT = f"crawlsel/{__version__}"
DEFAULT_PORTS = {"http": 80, "https": 443}
# A socket address as getaddrinfo gives it, (family, sockaddr): the resolver makes
# them, the connector connects to them.
Address = tuple[int, tuple]


def bracketed(host: str) -> str:
    """A host as URLs, Host headers and addresses spell it: an IPv6 literal in
    brackets ("[::1]", RFC 3986 3.2.2), any other host as it is."""
    return f"[{host}]" if ":" in host else host


def authority(scheme: str, host: str, port: int) -> str:
    """``host[:port]`` of a URL or a Host header: the port only when it is not the scheme's default."""
    if port != DEFAULT_PORTS[scheme]:
        return f"{bracketed(host)}:{port}"
    return bracketed(host)


class Target(NamedTuple):
    """One absolute http(s) URL, split into what a connection and a request need."""

    url: str
    scheme: str
    host: str  # lower-case; IPv6 literals without brackets
    port: int
    target: str  # request-target: path plus "?query", always starting with "/"
    line: int = 0  # line number in its source, 0 when given on the command line
    # "index" shadows tuple.index, which nothing here calls.
    index: int = 0  # type: ignore[assignment]  # position in the run's input order
    referer: str | None = None  # a crawl's: the page the link was found on

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        return authority(self.scheme, self.host, self.port)


def request_key(target: Target) -> tuple[str, str, int, str]:
    """What makes two URLs the same request (their request-targets are normalised)."""
    return (target.scheme, target.host, target.port, target.target)


class InvalidLine(NamedTuple):
    """A line of a URL list that is not a URL crawlsel can fetch."""

    text: str
    reason: str
    source: str
    line: int
    index: int = 0  # type: ignore[assignment]


class Config(NamedTuple):
    """Everything a run needs to know, built once by the CLI."""

    output_dir: Path = Path("crawled_page")
    concurrency: int = 64
    per_host: int = 8
    keep_alive: bool = True
    pipeline: int = 1
    user_agent: str = DEFAULT_USER_AGENT
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    cacert: str | None = None
    insecure: bool = False
    ip_version: int | None = None  # 4 or 6 to restrict addresses to one family
    pinned: tuple[tuple[str, int, str], ...] = ()  # --resolve HOST:PORT:ADDR
    timeout: float = 120.0  # whole URL, retries and redirects included
    speed_limit: int = 0  # abort below this many bytes/s ...
    speed_time: float = 30.0  # ... sustained for this long (curl's -Y / -y)
    retries: int = 2
    retry_delay: float = 1.0  # first backoff; doubles each attempt
    max_retry_wait: float = 60.0
    follow: bool = True
    max_redirects: int = 10
    max_size: int = 1 << 30  # decoded body bytes
    compressed: bool = True
    dedupe: bool = True  # fetch a URL listed twice only once
    method: str = "GET"
    skip_existing: bool = False  # a page already under output_dir is not fetched again
    update: bool = False  # a page saved before is asked for with its validators (update.py)
    raw_heads: bool = False  # keep each head as received (get -i prints it)
    crawl: bool = False  # records carry what link discovery needs (Content-Type, Link, Refresh)


class FetchResult(NamedTuple):
    """The outcome of one URL: written once, only read afterwards (by the reporter)."""

    url: str
    status: int | None = None
    path: str | None = None
    bytes: int = 0
    elapsed_ms: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    index: int = 0  # type: ignore[assignment]
    final_url: str | None = None
    attempts: int = 1
    skipped: bool = False
    skip_reason: str | None = None  # "exists" (--skip-existing), "robots" (crawl)
    # Crawl mode only: how the URL was found, and what the page gave the crawl.
    content_type: str | None = None
    link_fields: tuple[tuple[str, str], ...] = ()  # Link, Refresh, X-Robots-Tag as received
    via: str | None = None  # "seed", "link", "requisite", "redirect", "robots"; None in fetch
    depth: int = 0
    parent: str | None = None
    links: int = 0
    location: str | None = None  # a crawl's redirect: the target, handed back to the frontier
    unchanged: bool = False  # --update: a 304 kept the page saved before

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "path": self.path,
            "bytes": self.bytes,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "attempts": self.attempts,
            "skipped": self.skipped,
            "skip_reason": self.skip_reason,
            "error": self.error,
            "error_kind": self.error_kind,
        }
        if self.unchanged:
            record["unchanged"] = True
        if self.via is not None:
            record.update(
                via=self.via, depth=self.depth, parent=self.parent, links=self.links, location=self.location
            )
        return record
