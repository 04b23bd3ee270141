"""``fetch(job)``: one URL from connect to save, written top to bottom.

A generator that *yields* what it needs done (connect, send, receive, release,
sleep) and is sent the answer; an engine (a ``Performer``) performs each
operation its own way (blocking calls, threads, or readiness events), hands back
its connections as ``Channel``s, and throws ``CrawlError``s in (worded by
``netboundary``).  Redirects, retries, and the one free resend after a dead
keep-alive connection (``netboundary.unanswered``) are decided here with
``JobContext``, exactly as the select engine does.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from crawlsel.errors import ConnectionClosed, CrawlError
from crawlsel.http11 import BODY, HEAD, Event, ResponseHead, ResponseParser, UnexpectedData
from crawlsel.job import Done, Job, JobContext, Outcome, Redirect, Retry, Save
from crawlsel.models import FetchResult, Target
from crawlsel.netboundary import unanswered
from crawlsel.writer import commit_page

if TYPE_CHECKING:
    import socket


class Channel:
    """A connection as the procedure sees it: engines put their socket in it, the
    procedure only asks whether it had answered before (``reused``)."""

    __slots__ = ("sock", "origin", "reused")

    def __init__(self, sock: socket.socket, origin: tuple[str, str, int]) -> None:
        self.sock = sock
        self.origin = origin
        self.reused = False


class Connect(NamedTuple):
    target: Target
    fresh: bool  # True: never an idle keep-alive connection


class Send(NamedTuple):
    channel: Channel
    data: bytes


class Receive(NamedTuple):
    channel: Channel  # answered with bytes; b"" is the end of the stream


class Release(NamedTuple):
    channel: Channel
    reusable: bool


class Sleep(NamedTuple):
    seconds: float


Operation = Connect | Send | Receive | Release | Sleep
Procedure = Generator[Operation, Any, FetchResult]


class Performer(Protocol):
    """How an engine does the procedure's operations: ``perform`` is a generator
    that yields while it waits (the coroutine engine) or never yields (blocking),
    and returns the operation's answer; ``close`` closes idle connections."""

    def perform(self, op: Operation) -> Generator[Any, Any, Any]: ...
    def close(self) -> None: ...


def fetch(job: Job, context: JobContext) -> Procedure:
    """Everything one URL goes through; returns its ``FetchResult``."""
    job.started = time.monotonic()
    outcome: Outcome
    while True:
        job.attempts += 1
        fresh = False
        while True:
            channel = None
            try:
                channel = yield Connect(job.current, fresh)
                head, reusable = yield from exchange(channel, job)
            except CrawlError as exc:
                job.reset()
                if channel is not None:
                    yield Release(channel, False)
                    if not fresh and unanswered(exc, channel.reused):
                        fresh = True  # the server had closed the idle connection: not a retry
                        continue
                outcome = context.error_outcome(job, exc)
                break
            yield Release(channel, reusable and context.config.keep_alive)
            outcome = context.outcome(job, head)
            break
        match outcome:
            case Save():
                path, error = commit_page(job)
                return context.saved(job, head, path, error)
            case Done(result=result):
                return result
            case Retry(delay=delay):
                yield Sleep(delay)
            case Redirect():
                pass  # the job now points at its target


def exchange(channel: Channel, job: Job) -> Generator[Operation, Any, tuple[ResponseHead, bool]]:
    """Send the request, feed what arrives to the parser until the response ends;
    the parser's events are acted on after it returned, as the select engine does."""
    parser = ResponseParser()
    parser.expect(job.method)
    yield Send(channel, job.request)
    while True:
        try:
            data = yield Receive(channel)
        except ConnectionClosed as exc:
            exc.response_started = parser.response_started  # only the parser knows
            raise
        if not data:
            parser.feed_eof()
            head = _act(parser.take_events(), job)
            assert head is not None  # feed_eof raises unless the response ended
            return head, False
        try:
            parser.feed(data)
        except UnexpectedData:
            head = _act(parser.take_events(), job)
            assert head is not None  # bytes after a complete response
            return head, False  # complete, but the connection is not reused
        head = _act(parser.take_events(), job)
        if head is not None:
            return head, head.keep_alive


def _act(events: list[Event], job: Job) -> ResponseHead | None:
    """Give the head and body to the job; the head once the response is complete."""
    for kind, value in events:
        if kind is BODY:
            job.on_body(value)
        elif kind is HEAD:
            job.on_head(value)
        else:
            return value
    return None


def drive(procedure: Procedure, io: Performer) -> Generator[Any, Any, FetchResult]:
    """Run a procedure: each operation is done by ``io.perform``, a generator that
    may yield while it waits (the coroutine engine) or never yields (blocking)."""
    perform = io.perform
    value: Any = None
    error: CrawlError | None = None
    while True:
        try:
            op = procedure.throw(error) if error is not None else procedure.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = yield from perform(op)
        except CrawlError as exc:
            error = exc
