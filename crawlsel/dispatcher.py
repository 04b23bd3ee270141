"""``Dispatcher``: the select engine's scheduler; decides what each connection fetches next.

It takes work from a ``Frontier`` only while it has room for it, keeps a
queue per origin, gives each queued job a connection from the ``pool`` (which
opens them within the global and per-origin limits and keeps the idle keep-alive
ones), and acts on what ``job.JobContext`` decides a
response means (follow a redirect, retry after a backoff timer, deliver the
result).  It enforces the whole-URL deadline and turns every URL into exactly one
``FetchResult``, reported to the frontier and to the caller.  Each URL's moves
between stages go through ``stages.Stages``, which also keeps the counts.  It never
parses bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from crawlsel.connection import Connection
from crawlsel.connstate import CLOSED
from crawlsel.errors import CrawlError
from crawlsel.frontier import Frontier, ListFrontier
from crawlsel.http11 import ResponseHead
from crawlsel.job import PAUSE_STATUSES, Done, Job, JobContext, Redirect, Retry, Save, SinkFactory, SkipCheck
from crawlsel.loop import EventLoop, OnReadable, Timer
from crawlsel.models import Config, FetchResult
from crawlsel.netboundary import unanswered
from crawlsel.pacing import Pacing
from crawlsel.pool import ConnectionPool, Origin
from crawlsel.resolver import Answer, Resolver, family_for, pinned_for
from crawlsel.sources import Record
from crawlsel.stages import ANSWERED, DONE, QUEUED, SENT, WAITING, Stages
from crawlsel.writer import commit_page

if TYPE_CHECKING:
    from crawlsel.tracing import Tracer
    from crawlsel.update import Validators

# Records read per slice while filling the queues: between slices the loop polls
# its sockets, so the first requests leave before the rest of a long list is read.
FILL_SLICE = 256
# Free resends of one URL after connections that closed before answering it.
MAX_FREE_RESENDS = 16

ResultCallback = Callable[[FetchResult], None]


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
        pacing: Pacing | None = None,
        validators: Validators | None = None,
    ) -> None:
        self.config = config
        self._pacing = pacing or Pacing()
        self._context = JobContext(config, open_sink, skip, validators)
        self._loop = loop
        self._on_result = on_result
        self._trace = trace
        self._resolver = resolver or Resolver(
            loop,
            family=family_for(config.ip_version),
            pinned=pinned_for(config.pinned),
        )
        self.pool = ConnectionPool(loop, config, self, trace)  # its counts are the summary's
        self._frontier: Frontier = ListFrontier(())
        self._waiting_fd: int | None = None  # the frontier's input, watched by the loop
        self._stages = Stages()
        self._stopping = False
        # Read ahead far enough to find other origins' URLs while one origin is at its limit.
        self._max_queued = max(1024, 8 * config.concurrency)
        self._fill_timer: Timer | None = None  # the next slice of reading, after a poll
        self._completed: list[tuple[Job, ResponseHead, int]] = []  # answered, not yet acted on

    @property
    def total(self) -> int | None:
        """How many results the run will give, once the frontier knows."""
        return self._frontier.total

    # --- running -------------------------------------------------------------

    def run(self, work: Frontier | Iterable[Record]) -> None:
        """Fetch everything; on any exception (Ctrl-C) close and discard what is partial."""
        if not isinstance(work, Frontier):
            work = ListFrontier(work, dedupe=self.config.dedupe)
        self._frontier = work
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
        self._frontier.flush()
        for answered, _, _ in self._completed:
            answered.reset()  # interrupted before it was saved: no partial file survives
        self._completed.clear()
        if self._waiting_fd is not None:
            self._loop.unregister(self._waiting_fd)
            self._waiting_fd = None
        for origin in self.pool.origins.values():
            for conn in list(origin.conns):
                for job in conn.exchanges:
                    if isinstance(job, Job):
                        job.reset()  # no partial file survives an interruption
                conn.close()

    def _fill(self) -> None:
        """Take work from the frontier while there is room for it, a slice at a time."""
        frontier = self._frontier
        counts = self._stages.counts
        budget = FILL_SLICE
        while frontier.ready and not self._stopping and self._waiting_fd is None:
            room = self._max_queued - counts[QUEUED]
            if room <= 0:
                break
            if not budget:
                if self._fill_timer is None:
                    # A zero delay timer runs after the next poll of the selector.
                    self._fill_timer = self._loop.call_later(0.0, self._next_slice)
                break
            taken = room if room < budget else budget
            budget -= taken
            for record in frontier.take(taken):
                admitted = self._context.admit(record)
                if isinstance(admitted, Job):
                    self._enqueue(admitted)
                else:  # an invalid line, a page already saved, a URL robots.txt disallows
                    self._report(frontier.finished(admitted))
        fd = frontier.wait_fd
        if fd is not None and self._waiting_fd is None and not self._stopping:
            # A pipe with no complete line yet, scans not back: wait in the selector.
            self._waiting_fd = fd
            self._loop.register(fd, 1, OnReadable(self.input_ready))
        self._maybe_finish()

    def _next_slice(self) -> None:
        self._fill_timer = None
        self._fill()

    def input_ready(self) -> None:
        assert self._waiting_fd is not None
        self._loop.unregister(self._waiting_fd)
        self._waiting_fd = None
        self._frontier.input_ready()
        self._fill()

    def _report(self, record: FetchResult | None) -> None:
        if record is not None:  # None: the frontier reports it later, through take()
            self._on_result(record)

    def _enqueue(self, job: Job, *, front: bool = False) -> None:
        origin = self.pool.origin(job.current.origin)
        self._stages.move(job, QUEUED)
        if front:
            origin.queue.appendleft(job)
        else:
            origin.queue.append(job)
        self._schedule(origin)

    def _maybe_finish(self) -> None:
        if self._frontier.exhausted:
            self.pool.retire_idle()

    # --- scheduling ----------------------------------------------------------

    def _schedule(self, origin: Origin, free: Connection | None = None) -> None:
        """Give queued jobs of one origin to connections, opening them within limits.
        ``free``, one of its connections that answered all it carried, takes the first
        job (as the most recently used idle one would) or is parked."""
        if not origin.queue or self._stopping:
            if free is not None:
                self.pool.park(free)
            return
        if origin.addresses is None:
            if not origin.resolving:
                origin.resolving = True
                _, host, port = origin.key
                self._resolver.lookup(host, port, lambda answer: self._resolved(origin, answer))
            return
        queue = origin.queue
        if isinstance(origin.addresses, CrawlError):
            while queue:
                job = queue.popleft()
                if job.stage is QUEUED:
                    self._fail(job, origin.addresses)
            return
        pool = self.pool
        pacing = self._pacing
        while queue:
            if queue[0].stage is not QUEUED:
                queue.popleft()  # ended while queued (--timeout): left here to be dropped
                continue
            if pacing.active and pacing.hold(origin.key, self._loop, self._schedule, origin):
                break  # politeness: a timer comes back for the origin
            conn = free or pool.acquire(origin)
            if conn is None:
                return  # its connections, or a free slot, will come back for more
            free = None
            self._start(conn, queue.popleft())
            if pacing.active:
                pacing.started(origin.key, time.monotonic())
        if free is not None:
            pool.park(free)

    def _start(self, conn: Connection, job: Job) -> None:
        self._stages.move(job, SENT)
        if not job.started:
            job.started = time.monotonic()
            job.deadline = self._loop.call_later(self.config.timeout, self._expire, job)
        job.attempts += 1
        job.conn = conn
        conn.submit(job)

    def _resolved(self, origin: Origin, answer: Answer) -> None:
        origin.addresses = answer
        origin.resolving = False
        self._schedule(origin)
        self._maybe_finish()
        self._loop.call_soon(self._fill)

    def _wake_starved(self) -> None:
        while (origin := self.pool.next_starved()) is not None:
            self._schedule(origin)

    # --- ConnectionListener --------------------------------------------------

    def exchanges_complete(self, conn: Connection, completed: list) -> None:
        """The responses one read completed; the connection's fate is decided once,
        after all of them (deciding it per response closed a connection that the
        next completion of the same read then put back in the idle pool)."""
        if not self._completed:
            # The pages are saved and their results reported after this turn's
            # events and the requests they made (see _respond_completed).
            self._loop.call_soon(self._respond_completed)
        for job, head in completed:
            assert isinstance(job, Job)
            if head.status in PAUSE_STATUSES:  # before the connection's next request leaves
                self._pacing.pause(job.current.origin, self._context.origin_pause(head))
            self._stages.move(job, ANSWERED)
            job.conn = None
            self._completed.append((job, head, conn.fd))
        # The connection gets its next request before these pages are saved and
        # reported: the server starts on it one file rename earlier.
        pool = self.pool
        origin = pool.origins[conn.origin]
        if not conn.reusable:
            pass  # the connection reports its closing through connection_lost
        elif not self.config.keep_alive:
            pool.retire(conn)  # we asked for "Connection: close"; no need to wait for it
            self._wake_starved()
        elif conn.inflight == 0:
            if origin.queue:
                self._schedule(origin, conn)  # it takes the next job, or is parked
            else:
                pool.park(conn)
                if pool.has_starved:
                    pool.retire(conn)
                    self._wake_starved()
        else:
            self._schedule(origin)  # top up a pipelined connection
        self._fill()

    def _respond_completed(self) -> None:
        """Act on the responses completed during the last turn of the loop.

        Saving a page costs four file calls; done here, after every ready socket
        has been read and the turn's requests sent, they overlap the servers' work
        instead of delaying the requests of the sockets handled after it.
        """
        # The list stays filled while it is worked through: _maybe_finish does not
        # close idle connections a redirect among these could reuse, and if Ctrl-C
        # lands here, _shutdown discards what was not saved. (Completions are
        # reported only while the loop dispatches events: none is appended here.)
        for job, head, fd in self._completed:
            if self._trace:
                self._trace(fd, f"after the events: {job.method} {job.current.target} -> {head.status}")
            self._respond(job, head)
        self._completed = []
        self._frontier.flush()  # once per turn: an on-disk frontier commits what it learned
        if self._waiting_fd is not None and self._frontier.ready:
            self.input_ready()  # what it waited for came in the flush (and this fills)
        else:
            self._fill()  # a crawl's frontier grows as pages end (and calls _maybe_finish)

    def connection_lost(self, conn: Connection, exchanges: list, error: CrawlError | None) -> None:
        origin = self.pool.lost(conn)
        again: list[Job] = []
        for i, job in enumerate(exchanges):
            job.conn = None
            if job.expired:
                self._fail(job, self._context.timeout_error())
            elif i == 0 and error is not None and not self._may_resend(conn, job, error):
                self._error(job, error)
            else:
                # Sent but never answered (a dead keep-alive connection, or pipelined
                # behind a response that closed): sending it again is not a retry.
                job.reset()
                job.attempts -= 1
                again.append(job)
        for job in reversed(again):
            self._stages.move(job, QUEUED)
            origin.queue.appendleft(job)
        self._schedule(origin)
        self._wake_starved()
        self._fill()

    def _may_resend(self, conn: Connection, job: Job, error: CrawlError) -> bool:
        """The free resend rule (netboundary.unanswered), bounded per URL: each such
        resend needs a connection that completed a response, so the run always
        progresses; MAX_FREE_RESENDS bounds one URL's share of it."""
        if job.resends >= MAX_FREE_RESENDS or not unanswered(error, conn.responses > 0):
            return False
        job.resends += 1
        return True

    # --- what a response means (the policy is in job.py) -----------------------

    def _respond(self, job: Job, head: ResponseHead) -> None:
        match self._context.outcome(job, head):
            case Save():
                path, error = commit_page(job)
                self._deliver(job, self._context.saved(job, head, path, error))
            case Redirect():
                self._enqueue(job, front=True)
            case Retry(delay=delay):
                self._back_off(job, delay)
            case Done(result=result):
                self._deliver(job, result)

    def _error(self, job: Job, error: CrawlError) -> None:
        match self._context.error_outcome(job, error):
            case Retry(delay=delay) if not self._stopping:
                self._back_off(job, delay)
            case _:
                self._fail(job, error)

    def _back_off(self, job: Job, delay: float) -> None:
        self._stages.move(job, WAITING)
        job.retry_timer = self._loop.call_later(delay, self._retry_now, job)

    def _retry_now(self, job: Job) -> None:
        job.retry_timer = None
        job.resends = 0
        self._enqueue(job, front=True)

    def _expire(self, job: Job) -> None:
        """The whole-URL deadline (--timeout) passed: the job ends wherever it is."""
        job.deadline = None
        job.expired = True
        error = self._context.timeout_error()
        stage = job.stage
        if stage is SENT:
            conn = job.conn
            if conn is not None and conn.state is not CLOSED:
                conn.abort(error)  # connection_lost fails the job
            else:
                # Held by a connection that closed without telling (a bug): end it here.
                job.conn = None
                self._fail(job, error)
        elif stage is WAITING:
            assert job.retry_timer is not None  # a WAITING job has its timer
            job.retry_timer.cancel()
            job.retry_timer = None
            self._fail(job, error)
        elif stage is QUEUED:
            self._fail(job, error)  # _schedule drops it from its queue
        # ANSWERED: its response is acted on this turn; DONE: nothing left to end.
        self._fill()

    # --- results -------------------------------------------------------------

    def _fail(self, job: Job, error: CrawlError, *, status: int | None = None) -> None:
        self._deliver(job, self._context.failure(job, error, status=status))

    def _deliver(self, job: Job, result: FetchResult) -> None:
        self._stages.move(job, DONE)
        if job.deadline is not None:
            job.deadline.cancel()
            job.deadline = None
        self._report(self._frontier.finished(result))
        self._maybe_finish()
