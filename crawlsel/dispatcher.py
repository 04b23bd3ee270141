"""``Dispatcher``: decides what each connection fetches next, and what a response means.

It pulls records from the (lazy) source only while it has room for them, keeps a
queue per origin, opens connections within the global and per-origin limits,
reuses idle keep-alive connections, follows redirects, retries with backoff,
enforces the whole-URL deadline, and turns every URL into exactly one
``FetchResult``.  It never parses bytes.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol
from urllib.parse import urljoin

from crawlsel.connection import Connection, Tracer
from crawlsel.decoding import BodyDecoder
from crawlsel.errors import (
    ConnectError,
    ConnectionClosed,
    ConnectionReset,
    CrawlError,
    HTTPStatusError,
    InvalidURL,
    RedirectError,
    Timeout,
    TooLarge,
)
from crawlsel.http11 import RequestTemplate, ResponseHead
from crawlsel.loop import EventLoop, Timer
from crawlsel.models import Config, FetchResult, InvalidLine, Target
from crawlsel.resolver import Answer, Resolver
from crawlsel.sources import WaitForInput, parse_url
from crawlsel.tls import make_context

RECV_BUFFER_BYTES = 256 * 1024  # one buffer for every recv_into of the run
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # as curl --retry
RETRY_ERRORS = (ConnectError, ConnectionReset, Timeout)
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> str | None: ...
    def discard(self) -> None: ...


SinkFactory = Callable[[Target, ResponseHead], "Sink | None"]
ResultCallback = Callable[[FetchResult], None]
SkipCheck = Callable[[Target], "str | None"]


class Job:
    """One URL on its way through the run; the ``Exchange`` a connection carries."""

    __slots__ = (
        "target",
        "current",
        "method",
        "request",
        "started",
        "head",
        "sink",
        "decoder",
        "bytes",
        "attempts",
        "resent",
        "redirects",
        "conn",
        "deadline",
        "retry_timer",
        "expired",
        "final",
        "_owner",
    )

    def __init__(self, target: Target, owner: Dispatcher) -> None:
        self.target = target  # as listed: names the saved file
        self.current = target  # after redirects
        self.method = owner.method
        self.request = owner.render(target, target)
        self.started = 0.0
        self.head: ResponseHead | None = None
        self.sink: Sink | None = None
        self.decoder: BodyDecoder | None = None
        self.bytes = 0
        self.attempts = 0
        self.resent = False
        self.redirects: list[Target] = []
        self.conn: Connection | None = None
        self.deadline: Timer | None = None
        self.retry_timer: Timer | None = None
        self.expired = False
        self.final = False  # this response is the one the URL ends with
        self._owner = owner

    def on_head(self, head: ResponseHead) -> None:
        self.head = head
        self.final = self._owner.is_final(self, head)
        if not self.final:
            return  # a redirect or a retry: the body is drained, not kept
        limit = self._owner.config.max_size
        if (
            head.content_length is not None
            and head.content_length > limit
            and not head.header("content-encoding")
        ):
            raise TooLarge(f"body of {head.content_length:,} bytes is larger than --max-size ({limit:,})")
        encoding = head.header("content-encoding") if self._owner.config.compressed else None
        self.decoder = BodyDecoder(encoding or "", limit)
        self.sink = self._owner.open_sink(self.target, head)

    def on_body(self, data: bytes) -> None:
        decoder = self.decoder
        if decoder is None:
            return
        sink = self.sink
        for chunk in decoder.decode(data):
            if sink is not None:
                sink.write(chunk)
        self.bytes = decoder.decoded

    def reset(self) -> None:
        """Forget a partial answer before the request is sent again (or the run stops)."""
        if self.sink is not None:
            self.sink.discard()
        self.head = self.sink = self.decoder = None
        self.bytes = 0
        self.final = False


class _Origin:
    __slots__ = ("key", "queue", "conns", "idle", "addresses", "resolving")

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.queue: deque[Job] = deque()
        self.conns: list[Connection] = []
        self.idle: list[Connection] = []  # keep-alive connections waiting for a request
        self.addresses: Answer | None = None
        self.resolving = False


class Dispatcher:
    def __init__(
        self,
        loop: EventLoop,
        config: Config,
        open_sink: SinkFactory,
        on_result: ResultCallback,
        *,
        resolver: Resolver | None = None,
        skip: SkipCheck | None = None,
        trace: Tracer | None = None,
    ) -> None:
        self.config = config
        self.method = config.method
        self.open_sink = open_sink
        self._loop = loop
        self._on_result = on_result
        self._skip = skip
        self._trace = trace
        self._resolver = resolver or Resolver(
            loop,
            family={4: socket.AF_INET, 6: socket.AF_INET6}.get(config.ip_version or 0, socket.AF_UNSPEC),
            pinned={(host, port): addr for host, port, addr in config.pinned},
        )
        self._tls: ssl.SSLContext | None = None
        encoding = "gzip, deflate" if config.compressed else "identity"
        self._template = RequestTemplate(config.user_agent, config.headers, encoding)
        self._template_no_credentials = RequestTemplate(
            config.user_agent,
            tuple(h for h in config.headers if h[0].lower() not in CREDENTIAL_HEADERS),
            encoding,
        )
        self._buffer = bytearray(RECV_BUFFER_BYTES)
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._idle: OrderedDict[Connection, None] = OrderedDict()  # least recently used first
        self._starved: deque[_Origin] = deque()  # origins waiting for a global slot
        self._source: Iterator[Target | InvalidLine | WaitForInput] = iter(())
        self._source_done = False
        self._waiting_input: WaitForInput | None = None
        self._seen: set[int] = set()
        self._queued = 0  # jobs in origin queues
        self._active = 0  # jobs on connections
        self._backing_off = 0  # jobs waiting for a retry timer
        self._open = 0
        self._stopping = False
        # Read ahead far enough to find other origins' URLs while one origin is at its limit.
        self._max_queued = max(1024, 8 * config.concurrency)
        self.connections_opened = 0
        self.connections_by_host: dict[str, int] = {}
        self.peak_open = 0

    @property
    def open_connections(self) -> int:
        return self._open

    # --- running -------------------------------------------------------------

    def run(self, records: Iterable[Target | InvalidLine | WaitForInput]) -> None:
        """Fetch everything; on any exception (Ctrl-C) close and discard what is partial."""
        self._source = iter(records)
        self._source_done = False
        self._loop.call_soon(self._fill)
        try:
            self._loop.run(keep_alive=lambda: self._resolver.busy)
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Start no more requests; the loop returns at its next turn."""
        self._stopping = True
        self._loop.stop()

    def _shutdown(self) -> None:
        self._resolver.close()
        if self._waiting_input is not None:
            self._loop.unregister(self._waiting_input.fd)
            self._waiting_input = None
        for origin in self._origins.values():
            for conn in list(origin.conns):
                for job in conn.exchanges:
                    if isinstance(job, Job):
                        job.reset()  # no partial file survives an interruption
                conn.close()

    def _fill(self) -> None:
        """Read records from the source while there is room for them."""
        while (
            not self._source_done
            and not self._stopping
            and self._waiting_input is None
            and self._queued < self._max_queued
        ):
            try:
                record = next(self._source)
            except StopIteration:
                self._source_done = True
                break
            if isinstance(record, WaitForInput):
                # A pipe with no complete line yet: wait for it in the selector.
                self._waiting_input = record
                self._loop.register(record.fd, 1, _InputWaiter(self))
                break
            if isinstance(record, InvalidLine):
                where = f"{record.source}, line {record.line}: " if record.line else ""
                self._on_result(
                    FetchResult(
                        url=record.text,
                        error=f"{where}{record.reason}",
                        error_kind="invalid_url",
                        index=record.index,
                    )
                )
                continue
            self._admit(record)
        self._maybe_finish()

    def input_ready(self) -> None:
        assert self._waiting_input is not None
        self._loop.unregister(self._waiting_input.fd)
        self._waiting_input = None
        self._fill()

    def _admit(self, target: Target) -> None:
        if self.config.dedupe:
            key = hash(_key(target))
            if key in self._seen:
                return
            self._seen.add(key)
        if self._skip is not None:
            existing = self._skip(target)
            if existing is not None:
                self._on_result(
                    FetchResult(url=target.url, path=existing, index=target.index, skipped=True, attempts=0)
                )
                return
        self._enqueue(Job(target, self))

    def _enqueue(self, job: Job, *, front: bool = False) -> None:
        key = job.current.origin
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(key)
        if front:
            origin.queue.appendleft(job)
        else:
            origin.queue.append(job)
        self._queued += 1
        self._schedule(origin)

    def render(self, original: Target, current: Target) -> bytes:
        template = self._template if current.origin == original.origin else self._template_no_credentials
        return template.render(self.method, current, self.config.keep_alive)

    def _maybe_finish(self) -> None:
        if self._source_done and not self._queued and not self._active and not self._backing_off:
            for conn in list(self._idle):
                self._retire(conn)

    # --- scheduling ----------------------------------------------------------

    def _schedule(self, origin: _Origin) -> None:
        """Give queued jobs of one origin to connections, opening them within limits."""
        if not origin.queue or self._stopping:
            return
        if origin.addresses is None:
            if not origin.resolving:
                origin.resolving = True
                _, host, port = origin.key
                self._resolver.lookup(host, port, lambda answer: self._resolved(origin, answer))
            return
        if isinstance(origin.addresses, CrawlError):
            while origin.queue:
                self._queued -= 1
                self._fail(origin.queue.popleft(), origin.addresses)
            return
        config = self.config
        while origin.queue:
            conn = self._pick_connection(origin)
            if conn is None:
                if len(origin.conns) >= config.per_host:
                    return  # its own connections will come back for more
                if self._open >= config.concurrency:
                    if not self._idle or not self._retire(next(iter(self._idle))):
                        if origin not in self._starved:
                            self._starved.append(origin)
                        return
                conn = self._connect(origin)
            self._start(conn, origin.queue.popleft())

    def _pick_connection(self, origin: _Origin) -> Connection | None:
        if not self.config.keep_alive:
            return None
        if origin.idle:
            conn = origin.idle.pop()  # the most recently used: its socket is warm
            del self._idle[conn]
            return conn
        pipeline = self.config.pipeline
        if pipeline > 1 and len(origin.conns) >= self.config.per_host:
            # Every connection is busy and no new one may open: pipeline on one.
            for conn in origin.conns:
                if conn.reusable and conn.inflight < pipeline:
                    return conn
        return None

    def _park(self, conn: Connection) -> None:
        self._idle[conn] = None
        self._origins[conn.origin].idle.append(conn)

    def _unpark(self, conn: Connection) -> None:
        if self._idle.pop(conn, False) is None:
            self._origins[conn.origin].idle.remove(conn)

    def _connect(self, origin: _Origin) -> Connection:
        assert isinstance(origin.addresses, list)
        config = self.config
        conn = Connection(
            self._loop,
            origin.key,
            origin.addresses,
            self,
            self._buffer,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            speed_limit=config.speed_limit,
            speed_time=config.speed_time,
            tls=self._tls_context() if origin.key[0] == "https" else None,
            trace=self._trace,
        )
        origin.conns.append(conn)
        self._open += 1
        self.peak_open = max(self.peak_open, self._open)
        self.connections_opened += 1
        host = origin.key[1]
        self.connections_by_host[host] = self.connections_by_host.get(host, 0) + 1
        conn.open()
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # built once, on the first https origin
            self._tls = make_context(cacert=self.config.cacert, insecure=self.config.insecure)
        return self._tls

    def _start(self, conn: Connection, job: Job) -> None:
        self._queued -= 1
        self._active += 1
        if not job.started:
            job.started = time.monotonic()
            job.deadline = self._loop.call_later(self.config.timeout, self._expire, job)
        job.attempts += 1
        job.conn = conn
        conn.submit(job)

    def _retire(self, conn: Connection) -> bool:
        """Close an idle connection to free its slot; False if it is busy."""
        if conn.inflight:
            return False
        self._unpark(conn)
        conn.close()
        self._forget(conn)
        return True

    def _forget(self, conn: Connection) -> None:
        origin = self._origins[conn.origin]
        origin.conns.remove(conn)
        self._open -= 1

    def _resolved(self, origin: _Origin, answer: Answer) -> None:
        origin.addresses = answer
        origin.resolving = False
        self._schedule(origin)
        self._maybe_finish()
        self._loop.call_soon(self._fill)

    def _wake_starved(self) -> None:
        while self._starved and self._open < self.config.concurrency:
            self._schedule(self._starved.popleft())

    # --- ConnectionListener --------------------------------------------------

    def exchange_complete(self, conn: Connection, exchange: object, head: ResponseHead) -> None:
        job = exchange
        assert isinstance(job, Job)
        self._active -= 1
        job.conn = None
        self._respond(job, head)
        origin = self._origins[conn.origin]
        if not conn.reusable:
            pass  # the connection reports its closing through connection_lost
        elif not self.config.keep_alive:
            self._retire(conn)  # we asked for "Connection: close"; no need to wait for it
            self._wake_starved()
        elif conn.inflight == 0:
            self._park(conn)
            if origin.queue:
                self._schedule(origin)
            elif self._starved:
                self._retire(conn)
                self._wake_starved()
        else:
            self._schedule(origin)  # top up a pipelined connection
        self._fill()

    def connection_lost(self, conn: Connection, exchanges: list, error: CrawlError | None) -> None:
        self._unpark(conn)
        self._forget(conn)
        origin = self._origins[conn.origin]
        again: list[Job] = []
        for i, job in enumerate(exchanges):
            self._active -= 1
            job.conn = None
            if job.expired:
                self._fail(job, self._timeout_error())
            elif i == 0 and error is not None and not self._may_resend(conn, job, error):
                if isinstance(error, RETRY_ERRORS) and self._retry(job, None):
                    continue
                self._fail(job, error)
            else:
                # Sent but never answered (a dead keep-alive connection, or pipelined
                # behind a response that closed): sending it again is not a retry.
                job.reset()
                job.attempts -= 1
                again.append(job)
        for job in reversed(again):
            origin.queue.appendleft(job)
            self._queued += 1
        self._schedule(origin)
        self._wake_starved()
        self._fill()

    def _may_resend(self, conn: Connection, job: Job, error: CrawlError) -> bool:
        """A request on a reused connection the server had already closed gets one
        more try on a fresh connection; after any byte of answer, never."""
        if job.resent or not conn.responses:
            return False
        if not isinstance(error, ConnectionClosed) or error.response_started:
            return False
        job.resent = True
        return True

    # --- what a response means -----------------------------------------------

    def is_final(self, job: Job, head: ResponseHead) -> bool:
        """False when the response will be followed (redirect) or retried."""
        status = head.status
        if status in REDIRECT_STATUSES and self.config.follow and head.header("location") is not None:
            return False
        if status in RETRY_STATUSES and job.attempts <= self.config.retries and not job.expired:
            return False
        return True

    def _respond(self, job: Job, head: ResponseHead) -> None:
        if not job.final:
            if head.status in REDIRECT_STATUSES:
                self._redirect(job, head)
            elif not self._retry(job, head):
                self._fail(job, HTTPStatusError(_status_message(head, self.config)), status=head.status)
            return
        error: CrawlError | None = None
        path = None
        try:
            if job.decoder is not None:
                job.decoder.finish()
            if head.status >= 300:
                error = HTTPStatusError(_status_message(head, self.config))
            if job.sink is not None:
                path = job.sink.commit()
                job.sink = None
        except CrawlError as exc:
            error = exc
        if error is not None and path is None and job.sink is not None:
            job.sink.discard()
        self._report(job, head.status, path if error is None else None, error)

    def _redirect(self, job: Job, head: ResponseHead) -> None:
        location = head.header("location") or ""
        try:
            url = urljoin(job.current.url, location.strip())
            if "#" in url:
                url = url.split("#", 1)[0]
            scheme = url.split(":", 1)[0].lower()
            if scheme not in ("http", "https"):
                raise RedirectError(f"redirect to unsupported URL scheme {scheme!r}: {location}")
            target = parse_url(url, line=job.target.line, index=job.target.index)
        except InvalidURL as exc:
            self._fail(
                job, RedirectError(f"redirect to an invalid URL ({exc}): {location}"), status=head.status
            )
            return
        except RedirectError as exc:
            self._fail(job, exc, status=head.status)
            return
        visited = [job.target, *job.redirects]
        keys = [_key(t) for t in visited]
        if _key(target) in keys:
            loop = visited[keys.index(_key(target)) :] + [target]
            chain = " -> ".join(t.url for t in loop)
            self._fail(job, RedirectError(f"redirect loop: {chain}"), status=head.status)
            return
        if len(job.redirects) >= self.config.max_redirects:
            self._fail(
                job,
                RedirectError(f"too many redirects (more than {self.config.max_redirects})"),
                status=head.status,
            )
            return
        job.redirects.append(target)
        job.current = target
        job.request = self.render(job.target, target)
        job.resent = False
        job.reset()
        self._enqueue(job, front=True)

    def _retry(self, job: Job, head: ResponseHead | None) -> bool:
        """Schedule another attempt after a backoff; False when attempts are used up."""
        config = self.config
        if job.attempts > config.retries or job.expired or self._stopping:
            return False
        delay = config.retry_delay * 2 ** (job.attempts - 1) * random.uniform(0.5, 1.0)
        if head is not None:
            asked = _retry_after(head.header("retry-after"))
            if asked is not None:
                delay = asked
        delay = min(delay, config.max_retry_wait)
        job.reset()
        self._backing_off += 1
        job.retry_timer = self._loop.call_later(delay, self._retry_now, job)
        return True

    def _retry_now(self, job: Job) -> None:
        self._backing_off -= 1
        job.retry_timer = None
        job.resent = False
        self._enqueue(job, front=True)

    def _expire(self, job: Job) -> None:
        """The whole-URL deadline (--timeout) passed."""
        job.deadline = None
        job.expired = True
        if job.conn is not None:
            job.conn.abort(self._timeout_error())  # connection_lost fails the job
        elif job.retry_timer is not None:
            job.retry_timer.cancel()
            job.retry_timer = None
            self._backing_off -= 1
            self._fail(job, self._timeout_error())
        elif job in self._origins[job.current.origin].queue:
            self._origins[job.current.origin].queue.remove(job)
            self._queued -= 1
            self._fail(job, self._timeout_error())
        self._fill()

    def _timeout_error(self) -> Timeout:
        return Timeout(f"gave up after {self.config.timeout:g} s (--timeout)")

    # --- results -------------------------------------------------------------

    def _fail(self, job: Job, error: CrawlError, *, status: int | None = None) -> None:
        job.reset()
        self._report(job, status, None, error)
        self._maybe_finish()

    def _report(self, job: Job, status: int | None, path: str | None, error: CrawlError | None) -> None:
        if job.deadline is not None:
            job.deadline.cancel()
            job.deadline = None
        started = job.started or time.monotonic()
        self._on_result(
            FetchResult(
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
        )


class _InputWaiter:
    """Selector handler for a URL pipe with no complete line yet."""

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def on_ready(self, mask: int) -> None:
        self._dispatcher.input_ready()


def _key(target: Target) -> tuple[str, str, int, str]:
    """What makes two URLs the same request."""
    return (target.scheme, target.host, target.port, target.target)


def _status_message(head: ResponseHead, config: Config) -> str:
    text = f"HTTP {head.status} {head.reason}".rstrip()
    if head.status in REDIRECT_STATUSES:
        if not config.follow:
            return f"{text} (not followed: --no-follow)"
        if head.header("location") is None:
            return f"{text} without a Location"
    return text


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110 10.2.3): delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for this rare header: keeps start-up short

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
