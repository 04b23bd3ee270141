"""One URL's state on its way through a run, and what its responses mean.

Shared by every engine: ``Job`` is the exchange a connection carries (its head and
body go to a decoder and a sink); ``JobContext`` holds the run's policy: whether a
response is final, where a redirect leads, how long to back off before a retry,
and which ``FetchResult`` a URL ends with, as small frozen outcome values.
Nothing here does I/O: a final response's page is committed by the caller
(``writer.commit_page``), which then asks ``saved`` for the URL's record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import urljoin

from crawlsel.decoding import BodyDecoder, accept_encoding, codings
from crawlsel.errors import (
    ConnectError,
    ConnectionReset,
    CrawlError,
    HTTPStatusError,
    InvalidURL,
    ProxyUnreachable,
    RedirectError,
    Timeout,
    TooLarge,
)
from crawlsel.http11 import ResponseHead
from crawlsel.models import Config, FetchResult, InvalidLine, Target, request_key
from crawlsel.proxy import forward_refusal
from crawlsel.request import RequestTemplate
from crawlsel.responses import REDIRECT_STATUSES, location, retry_after, status_message
from crawlsel.sources import parse_url
from crawlsel.stages import NEW

if TYPE_CHECKING:
    from crawlsel.connection import Connection
    from crawlsel.loop import Timer
    from crawlsel.update import Validators
from crawlsel.urls import normalize

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # as curl --retry
PAUSE_STATUSES = frozenset({429, 503})  # with Retry-After: the whole origin rests
RETRY_ERRORS = (ConnectError, ConnectionReset, Timeout, ProxyUnreachable)
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# What a crawl reads from a page's head besides its Content-Type (links, and whether to follow them).
CRAWL_FIELDS = frozenset({"link", "refresh", "x-robots-tag"})


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> str | None: ...
    def discard(self) -> None: ...


SinkFactory = Callable[[Target, ResponseHead], "Sink | None"]
SkipCheck = Callable[[Target], "str | None"]  # the saved file of a URL, to skip it

# What a finished exchange leads to: frozen records (NamedTuples: a frozen dataclass
# costs 1.2 ms of start-up to build, a NamedTuple 0.2).


class Redirect(NamedTuple):
    """Follow it: the job now points at ``target``."""

    target: Target


class Retry(NamedTuple):
    """Send the request again after ``delay`` seconds."""

    delay: float


class Done(NamedTuple):
    """The URL ends with this record."""

    result: FetchResult


class Save(NamedTuple):
    """The URL's last response: commit its page (``writer.commit_page``), then ``saved``."""


SAVE = Save()
Outcome = Redirect | Retry | Done | Save


class Job:
    """One URL on its way through the run; the ``Exchange`` a connection carries."""

    __slots__ = (
        "stage",
        "target",
        "current",
        "method",
        "request",
        "started",
        "head",
        "sink",
        "decoder",
        "codings",
        "bytes",
        "attempts",
        "resends",
        "redirects",
        "conn",
        "deadline",
        "retry_timer",
        "expired",
        "final",
        "_context",
    )

    def __init__(self, target: Target, context: JobContext) -> None:
        self.stage = NEW
        self.target = target  # as listed: names the saved file
        self.current = target  # after redirects
        self.method = context.method
        self.request = context.render(target, target)
        self.started = 0.0
        self.head: ResponseHead | None = None
        self.sink: Sink | None = None
        self.decoder: BodyDecoder | None = None
        self.codings: list[tuple[str, str]] | None = None  # to undo, once a body byte arrives
        self.bytes = 0
        self.attempts = 0
        self.resends = 0  # sent again after a connection closed unanswered
        self.redirects: list[Target] = []
        self.conn: Connection | None = None  # the connection carrying it, in the select engine
        self.deadline: Timer | None = None  # the --timeout timer, in the select engine
        self.retry_timer: Timer | None = None
        self.expired = False
        self.final = False  # this response is the one the URL ends with
        self._context = context

    def on_head(self, head: ResponseHead) -> None:
        self.head = head
        context = self._context
        if context.cookies is not None:  # every response's, a redirect's too: before it is followed
            context.cookies.receive(self.current, head.headers)
        self.final = context.is_final(self, head)
        if not self.final:
            return  # a redirect or a retry: the body is drained, not kept
        limit = context.config.max_size
        applied: list[tuple[str, str]] = []
        if context.config.compressed:  # --no-compressed keeps Content-Encoding as received
            applied = [(c, "content") for c in codings(head.field("content-encoding"))]
        # Transfer codings are hop-by-hop: always removed, after the content codings.
        applied += [(c, "transfer") for c in head.transfer_codings]
        if applied:
            # The decoder is made at the first body byte: a body of no bytes (HEAD,
            # 204, 304, Content-Length: 0) is an empty page whatever its codings say.
            self.codings = applied
        elif head.content_length is not None and head.content_length > limit:
            raise TooLarge(f"body of {head.content_length:,} bytes is larger than --max-size ({limit:,})")
        self.sink = context.open_sink(self.target, head)

    def on_body(self, data: bytes) -> None:
        if not self.final:
            return
        sink = self.sink
        if self.codings is None:  # identity: the bytes as they came, counted against --max-size
            self.bytes += len(data)
            if self.bytes > self._context.config.max_size:
                raise TooLarge(f"body larger than --max-size ({self._context.config.max_size:,} bytes)")
            if sink is not None:
                sink.write(data)
            return
        decoder = self.decoder
        if decoder is None:
            self.decoder = decoder = BodyDecoder(self.codings, self._context.config.max_size)
        for chunk in decoder.decode(data):
            if sink is not None:
                sink.write(chunk)
        self.bytes = decoder.decoded

    def reset(self) -> None:
        """Forget a partial answer before the request is sent again (or the run stops)."""
        if self.sink is not None:
            self.sink.discard()
        self.head = self.sink = self.decoder = self.codings = None
        self.bytes = 0
        self.final = False


class JobContext:
    """The run's policy for requests and responses, shared by all jobs of a run."""

    def __init__(
        self,
        config: Config,
        open_sink: SinkFactory,
        skip: SkipCheck | None = None,
        validators: Validators | None = None,
    ) -> None:
        self.config = config
        self.validators = validators  # --update
        self.method = config.method
        self.open_sink = open_sink
        self._skip = skip
        self.cookies = config.cookies  # -b / --cookie-jar: a CookieStore; None leaves cookies off
        encoding = accept_encoding() if config.compressed else "identity"
        merge = config.cookies is not None  # -H Cookie and the stored ones in one field
        self._template = RequestTemplate(config.user_agent, config.headers, encoding, config.proxies, merge)
        self._template_no_credentials = RequestTemplate(
            config.user_agent,
            tuple(h for h in config.headers if h[0].lower() not in CREDENTIAL_HEADERS),
            encoding,
            config.proxies,
        )

    def admit(self, record: Target | InvalidLine | FetchResult) -> Job | FetchResult:
        """A record of the frontier becomes a job, or an immediate result (an
        invalid line, a page already saved, a result the frontier decided)."""
        if isinstance(record, FetchResult):
            return record
        if isinstance(record, InvalidLine):
            return invalid_result(record)
        if self._skip is not None:
            existing = self._skip(record)
            if existing is not None:
                return FetchResult(
                    url=record.url,
                    path=existing,
                    index=record.index,
                    skipped=True,
                    skip_reason="exists",
                    attempts=0,
                )
        return Job(record, self)

    def render(self, original: Target, current: Target, *, cookies: bool = False) -> bytes:
        """Request bytes; credentials given with -H go only to the listed URL's origin, and
        stored cookies (when the request leaves: ``cookies``) only where RFC 6265 sends them."""
        template = self._template if current.origin == original.origin else self._template_no_credentials
        validators = self.validators
        extra = validators.conditions(current.url) if validators is not None and current is original else b""
        cookie = self.cookies.header(current) if cookies and self.cookies is not None else None
        return template.render(self.method, current, self.config.keep_alive, cookie, extra)

    def is_final(self, job: Job, head: ResponseHead) -> bool:
        """False when the response will be followed (redirect) or retried."""
        status = head.status
        if status in REDIRECT_STATUSES and self.config.follow and location(head):
            return False
        if status in RETRY_STATUSES and job.attempts <= self.config.retries and not job.expired:
            return False
        return True

    def outcome(self, job: Job, head: ResponseHead) -> Outcome:
        """What a complete response means for its URL."""
        if job.final:
            return SAVE
        if head.status in REDIRECT_STATUSES:
            try:
                if self.config.crawl and job.current.target != "/robots.txt":
                    return Done(self.handed_back(job, head))
                return Redirect(self.follow(job, head))
            except RedirectError as exc:
                return Done(self.failure(job, exc, status=head.status))
        delay = self.retry_delay(job, head)
        if delay is not None:
            return Retry(delay)
        return Done(self.failure(job, HTTPStatusError(status_message(head, self.config)), status=head.status))

    def saved(self, job: Job, head: ResponseHead, path: str | None, error: CrawlError | None) -> FetchResult:
        """The record of a final response whose page was committed at ``path`` (or failed)."""
        validators = self.validators
        if validators is not None and error is None and job.current is job.target:
            if head.status == 304 and (kept := validators.unchanged(job.target.url)) is not None:
                return self.result(job, 304, kept, None)._replace(unchanged=True)
            if path is not None:
                validators.saw(job.target.url, path, head)
        if error is None and head.status >= 300:
            proxied = forward_refusal(head.status, self.config.proxies, job.current.scheme, job.current.host)
            error = proxied or HTTPStatusError(status_message(head, self.config))
        result = self.result(job, head.status, path if error is None else None, error)
        if self.config.crawl:
            fields = tuple(
                (name, value.decode("latin-1"))
                for key, value in head.headers
                if (name := key.decode("latin-1").lower()) in CRAWL_FIELDS
            )
            result = result._replace(content_type=head.header("content-type"), link_fields=fields)
        return result

    def origin_pause(self, head: ResponseHead) -> float | None:
        """Seconds the whole origin must rest: a 429 or 503 with Retry-After (the
        server is overloaded for every URL, not only this one)."""
        if head.status not in PAUSE_STATUSES:
            return None
        asked = retry_after(head.header("retry-after"))
        return None if asked is None else min(asked, self.config.max_retry_wait)

    def error_outcome(self, job: Job, error: CrawlError) -> Retry | Done:
        """What a failed exchange means: a retry after a delay, or the URL's end."""
        if isinstance(error, RETRY_ERRORS):
            delay = self.retry_delay(job, None)
            if delay is not None:
                return Retry(delay)
        return Done(self.failure(job, error))

    def handed_back(self, job: Job, head: ResponseHead) -> FetchResult:
        """A crawl's redirect ends its URL: the target goes back to the frontier, where
        scope, robots.txt and "each URL once" apply to it (RFC 9309's robots.txt hops
        are followed here instead)."""
        target = self._redirect_target(job, head)
        job.reset()
        return self.result(job, head.status, None, None)._replace(location=target.url)

    def follow(self, job: Job, head: ResponseHead) -> Target:
        """The redirect's target, with the job moved to it; RedirectError if refused."""
        target = self._redirect_target(job, head)
        visited = [job.target, *job.redirects]
        keys = [request_key(t) for t in visited]
        if request_key(target) in keys:
            chain = " -> ".join(t.url for t in [*visited[keys.index(request_key(target)) :], target])
            raise RedirectError(f"redirect loop: {chain}")
        limit = min(self.config.max_redirects, 5) if self.config.crawl else self.config.max_redirects
        if len(job.redirects) >= limit:  # (a crawl follows only robots.txt's: RFC 9309 says 5)
            raise RedirectError(f"too many redirects (more than {limit})")
        job.redirects.append(target)
        job.current = target
        job.request = self.render(job.target, target)
        job.resends = 0
        job.attempts = 0  # each hop has its own retries; --timeout bounds the whole URL
        job.reset()
        return target

    def _redirect_target(self, job: Job, head: ResponseHead) -> Target:
        """Where a redirect points, as a canonical target; RedirectError if it cannot be fetched."""
        to = location(head) or ""
        url = urljoin(job.current.url, to).split("#", 1)[0]
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise RedirectError(f"redirect to unsupported URL scheme {scheme!r}: {to}")
        try:
            # Recorded as final_url in its canonical spelling, as curl's url_effective is.
            target = parse_url(normalize(url), line=job.target.line, index=job.target.index)
        except InvalidURL as exc:
            raise RedirectError(f"redirect to an invalid URL ({exc}): {to}") from None
        return target

    def retry_delay(self, job: Job, head: ResponseHead | None) -> float | None:
        """Seconds to wait before the next attempt, or None when attempts are used up."""
        config = self.config
        if job.attempts > config.retries or job.expired:
            return None
        import random  # only a retry needs it: not start-up time

        delay = config.retry_delay * 2 ** (job.attempts - 1) * random.uniform(0.5, 1.0)
        if head is not None:
            asked = retry_after(head.header("retry-after"))
            if asked is not None:
                delay = asked
        job.reset()
        return min(delay, config.max_retry_wait)

    def timeout_error(self) -> Timeout:
        return Timeout(f"gave up after {self.config.timeout:g} s (--timeout)")

    def failure(self, job: Job, error: CrawlError, *, status: int | None = None) -> FetchResult:
        job.reset()
        return self.result(job, status, None, error)

    def result(self, job: Job, status: int | None, path: str | None, error: CrawlError | None) -> FetchResult:
        started = job.started or time.monotonic()
        return FetchResult(
            url=job.target.url,
            final_url=job.current.url,
            status=status,
            path=path,
            bytes=job.bytes if error is None else 0,
            elapsed_ms=(time.monotonic() - started) * 1000.0,
            error=str(error) if error else None,
            error_kind=error.kind if error else None,
            index=job.target.index,
            attempts=job.attempts,
        )


def invalid_result(record: InvalidLine) -> FetchResult:
    """The record of a line that is not a URL crawlsel can fetch (also fetch --workers' parent's)."""
    where = f"{record.source}, line {record.line}: " if record.line else ""
    return FetchResult(
        url=record.text, error=f"{where}{record.reason}", error_kind="invalid_url", index=record.index
    )
