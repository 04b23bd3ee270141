"""``Dispatcher``: decides what each connection fetches next.

It pulls records from the (lazy) source only while it has room for them, keeps a
queue per origin, opens connections within the global and per-origin limits,
reuses idle keep-alive connections, resends a request once when a reused
connection turns out to have been closed by the server before answering, and
turns every URL into exactly one ``FetchResult``.  It never parses bytes.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from crawlsel.connection import Connection, Tracer
from crawlsel.errors import ConnectionClosed, CrawlError, HTTPStatusError
from crawlsel.http11 import RequestTemplate, ResponseHead
from crawlsel.loop import EventLoop
from crawlsel.models import Config, FetchResult, InvalidLine, Target
from crawlsel.resolver import Answer, Resolver
from crawlsel.tls import make_context

RECV_BUFFER_BYTES = 256 * 1024  # one buffer for every recv_into of the run


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> str | None: ...
    def discard(self) -> None: ...


SinkFactory = Callable[[Target, ResponseHead], "Sink | None"]
ResultCallback = Callable[[FetchResult], None]


class Job:
    """One URL on its way through the run; the ``Exchange`` a connection carries."""

    __slots__ = ("target", "method", "request", "started", "head", "sink", "bytes", "resent", "_open_sink")

    def __init__(self, target: Target, method: str, request: bytes, open_sink: SinkFactory) -> None:
        self.target = target
        self.method = method
        self.request = request
        self.started = time.monotonic()
        self.head: ResponseHead | None = None
        self.sink: Sink | None = None
        self.bytes = 0
        self.resent = False
        self._open_sink = open_sink

    def on_head(self, head: ResponseHead) -> None:
        self.head = head
        self.sink = self._open_sink(self.target, head)

    def on_body(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.sink is not None:
            self.sink.write(data)

    def reset(self) -> None:
        """Forget a partial answer before the request is sent again."""
        if self.sink is not None:
            self.sink.discard()
        self.head = self.sink = None
        self.bytes = 0


class _Origin:
    __slots__ = ("key", "queue", "conns", "addresses", "resolving")

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.queue: deque[Job] = deque()
        self.conns: list[Connection] = []
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
        method: str = "GET",
        trace: Tracer | None = None,
    ) -> None:
        self._loop = loop
        self._config = config
        self._open_sink = open_sink
        self._on_result = on_result
        self._resolver = resolver or Resolver(
            loop,
            family={4: socket.AF_INET, 6: socket.AF_INET6}.get(config.ip_version or 0, socket.AF_UNSPEC),
            pinned={(host, port): addr for host, port, addr in config.pinned},
        )
        self._tls: ssl.SSLContext | None = None
        self._method = method
        self._trace = trace
        self._template = RequestTemplate(config.user_agent, config.headers)
        self._buffer = bytearray(RECV_BUFFER_BYTES)
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._idle: OrderedDict[Connection, None] = OrderedDict()  # least recently used first
        self._starved: deque[_Origin] = deque()  # origins waiting for a global slot
        self._source: Iterator[Target | InvalidLine] = iter(())
        self._source_done = False
        self._queued = 0
        self._active = 0
        self._open = 0
        # Read ahead far enough to find other origins' URLs while one origin is at its limit.
        self._max_queued = max(1024, 8 * config.concurrency)
        self.connections_opened = 0
        self.peak_open = 0

    # --- running -------------------------------------------------------------

    def run(self, records: Iterable[Target | InvalidLine]) -> None:
        self._source = iter(records)
        self._source_done = False
        self._loop.call_soon(self._fill)
        try:
            self._loop.run(keep_alive=lambda: self._resolver.busy)
        finally:
            self._resolver.close()
            for origin in self._origins.values():
                for conn in list(origin.conns):
                    conn.close()

    def _fill(self) -> None:
        """Read records from the source while there is room for them."""
        while not self._source_done and self._queued < self._max_queued:
            try:
                record = next(self._source)
            except StopIteration:
                self._source_done = True
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
            job = Job(record, self._method, self._render(record), self._open_sink)
            origin = self._origins.get(record.origin)
            if origin is None:
                origin = self._origins[record.origin] = _Origin(record.origin)
            origin.queue.append(job)
            self._queued += 1
            self._schedule(origin)
        self._maybe_finish()

    def _render(self, target: Target) -> bytes:
        return self._template.render(self._method, target, self._config.keep_alive)

    def _maybe_finish(self) -> None:
        if self._source_done and not self._queued and not self._active:
            for conn in list(self._idle):
                self._retire(conn)

    # --- scheduling ----------------------------------------------------------

    def _schedule(self, origin: _Origin) -> None:
        """Give queued jobs of one origin to connections, opening them within limits."""
        if not origin.queue:
            return
        if origin.addresses is None:
            if not origin.resolving:
                origin.resolving = True
                _, host, port = origin.key
                self._resolver.lookup(host, port, lambda answer: self._resolved(origin, answer))
            return
        if isinstance(origin.addresses, CrawlError):
            while origin.queue:
                self._fail(origin.queue.popleft(), origin.addresses, dequeued=True)
            return
        config = self._config
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
        pipelined = None
        for conn in origin.conns:
            if not conn.reusable or not self._config.keep_alive:
                continue
            if conn.inflight == 0 and (conn in self._idle):
                return conn
            if conn.inflight < self._config.pipeline and pipelined is None:
                pipelined = conn
        if pipelined is not None and len(origin.conns) >= self._config.per_host:
            return pipelined
        return None

    def _connect(self, origin: _Origin) -> Connection:
        assert isinstance(origin.addresses, list)
        config = self._config
        conn = Connection(
            self._loop,
            origin.key,
            origin.addresses,
            self,
            self._buffer,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            tls=self._tls_context() if origin.key[0] == "https" else None,
            trace=self._trace,
        )
        origin.conns.append(conn)
        self._open += 1
        self.peak_open = max(self.peak_open, self._open)
        self.connections_opened += 1
        conn.open()
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # built once, on the first https origin
            self._tls = make_context(cacert=self._config.cacert, insecure=self._config.insecure)
        return self._tls

    def _start(self, conn: Connection, job: Job) -> None:
        self._queued -= 1
        self._active += 1
        self._idle.pop(conn, None)
        conn.submit(job)

    def _retire(self, conn: Connection) -> bool:
        """Close an idle connection to free its slot; False if it is busy."""
        if conn.inflight:
            return False
        self._idle.pop(conn, None)
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
        while self._starved and self._open < self._config.concurrency:
            origin = self._starved.popleft()
            self._schedule(origin)

    # --- ConnectionListener --------------------------------------------------

    def exchange_complete(self, conn: Connection, exchange: object, head: ResponseHead) -> None:
        job = exchange
        assert isinstance(job, Job)
        self._active -= 1
        self._finish(job, head)
        origin = self._origins[conn.origin]
        if not conn.reusable:
            pass  # the connection reports its closing through connection_lost
        elif not self._config.keep_alive:
            self._retire(conn)  # we asked for "Connection: close"; no need to wait for it
            self._wake_starved()
        elif conn.inflight == 0:
            self._idle[conn] = None
            if origin.queue:
                self._schedule(origin)
            elif self._starved:
                self._retire(conn)
                self._wake_starved()
        else:
            self._schedule(origin)  # top up a pipelined connection
        self._fill()

    def connection_lost(self, conn: Connection, exchanges: list, error: CrawlError | None) -> None:
        self._idle.pop(conn, None)
        self._forget(conn)
        origin = self._origins[conn.origin]
        retry: list[Job] = []
        for i, job in enumerate(exchanges):
            self._active -= 1
            if i == 0 and error is not None and not self._may_resend(conn, job, error):
                self._fail(job, error)
            else:
                job.reset()
                retry.append(job)
        for job in reversed(retry):
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

    # --- results -------------------------------------------------------------

    def _finish(self, job: Job, head: ResponseHead) -> None:
        error: CrawlError | None = None
        path = None
        if head.status >= 300:
            if job.sink is not None:
                job.sink.commit()
            error = HTTPStatusError(_status_message(head))
        elif job.sink is not None:
            try:
                path = job.sink.commit()
            except CrawlError as exc:
                error = exc
        self._report(job, head.status, path, error)

    def _fail(self, job: Job, error: CrawlError, *, dequeued: bool = False) -> None:
        if dequeued:
            self._queued -= 1
        if job.sink is not None:
            job.sink.discard()
        self._report(job, job.head.status if job.head else None, None, error)
        self._maybe_finish()

    def _report(self, job: Job, status: int | None, path: str | None, error: CrawlError | None) -> None:
        self._on_result(
            FetchResult(
                url=job.target.url,
                status=status,
                path=path,
                bytes=job.bytes,
                elapsed_ms=(time.monotonic() - job.started) * 1000.0,
                error=str(error) if error else None,
                error_kind=error.kind if error else None,
                index=job.target.index,
            )
        )


def _status_message(head: ResponseHead) -> str:
    text = f"HTTP {head.status} {head.reason}".rstrip()
    if 300 <= head.status < 400:
        return f"{text} (not saved: redirects are not followed)"
    return text
