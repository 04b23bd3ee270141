"""The ``coroutine`` engine: generator tasks on the same ``EventLoop``.

The tutorial's promise, "asynchronous code in a synchronous style", kept on one
thread without asyncio: ``procedure.fetch`` reads top to bottom like the blocking
version, and here each operation is done with non-blocking sockets, *yielding* a
``Future`` until the selector says the socket is ready.  A ``Task`` resumes its
generator when the future it waits on is done.

A host's addresses are tried in turn, each once the one before failed; they are
not raced after a head start as the select engine's connection races them
(RFC 8305).  Racing needs several connects in flight for one task, which is
what the connector of the select engine does on this same loop: the engine
should take its sockets from there once it stands on its own.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from crawlsel.engines.blocking import RECV_BYTES, jobs
from crawlsel.engines.procedure import Channel, Connect, Operation, Receive, Release, Send, drive, fetch
from crawlsel.errors import ConnectError, CrawlError, Timeout
from crawlsel.job import JobContext, SinkFactory, SkipCheck
from crawlsel.loop import EVENT_READ, EVENT_WRITE, EventLoop
from crawlsel.models import Config, FetchResult
from crawlsel.netboundary import (
    CONNECT_STARTED,
    Address,
    connect_failed,
    connect_timed_out,
    handshake_timed_out,
    read_timed_out,
    receive_failed,
    send_failed,
    send_timed_out,
    start_connect,
)
from crawlsel.resolver import Resolver, family_for, pinned_for
from crawlsel.tls import handshake_step, make_context

if TYPE_CHECKING:
    from crawlsel.engines import Record, ResultCallback


class Future:
    """A result that is not there yet; whoever waits is called back once."""

    __slots__ = ("result", "error", "done", "_callback")

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self._callback: Callable[[Future], None] | None = None

    def set(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self.done:
            self.result, self.error, self.done = result, error, True
            if self._callback is not None:
                self._callback(self)

    def on_ready(self, mask: int) -> None:  # the selector's key.data, while waiting for a socket
        self.set(mask)


class Task:
    """Drives a generator that yields futures, resuming it when each is done."""

    def __init__(self, coroutine: Generator[Future, Any, Any], done: Callable[[Any], None]) -> None:
        self._coroutine = coroutine
        self._done = done
        self._step(None, None)

    def _step(self, value: Any, error: BaseException | None) -> None:
        try:
            future = self._coroutine.throw(error) if error is not None else self._coroutine.send(value)
        except StopIteration as stop:
            self._done(stop.value)
            return
        future._callback = lambda f: self._step(f.result, f.error)


class AsyncIO:
    """The procedure's operations as coroutines on the loop."""

    def __init__(self, loop: EventLoop, config: Config) -> None:
        self.loop = loop
        self.config = config
        self.resolver = Resolver(loop, family=family_for(config.ip_version), pinned=pinned_for(config.pinned))
        self.idle: dict[tuple[str, str, int], list[Channel]] = {}
        self.tls: ssl.SSLContext | None = None

    def wait(
        self, sock: socket.socket, events: int, timeout: float, timed_out: Callable[[float], Timeout]
    ) -> Iterator[Future]:
        """Until ``sock`` is ready for ``events``; ``timed_out(timeout)`` is thrown in after ``timeout`` s."""
        future = Future()
        self.loop.register(sock, events, future)
        timer = self.loop.call_later(timeout, lambda: future.set(error=timed_out(timeout)))
        try:
            yield future
        finally:
            timer.cancel()
            self.loop.unregister(sock)

    def perform(self, op: Operation) -> Generator[Future, Any, Any]:
        if isinstance(op, Receive):
            return (yield from self.receive(op.channel))
        if isinstance(op, Send):
            return (yield from self.send(op.channel, op.data))
        if isinstance(op, Connect):
            return (yield from self.connect(op))
        if isinstance(op, Release):
            return self.release(op)
        future = Future()  # Sleep
        self.loop.call_later(op.seconds, future.set)
        yield future

    def connect(self, op: Connect) -> Generator[Future, Any, Channel]:
        target = op.target
        pool = self.idle.get(target.origin)
        if pool:
            if not op.fresh:
                return pool.pop()
            pool.pop().sock.close()
        found = Future()
        self.resolver.lookup(target.host, target.port, found.set)
        if not found.done:
            yield found
        if isinstance(found.result, CrawlError):
            raise found.result
        # The addresses in turn, each once the one before failed.  Not raced as the
        # select engine races them (RFC 8305): see the module docstring.
        addresses = found.result
        for i, address in enumerate(addresses):
            try:
                sock = yield from self.connect_to(address)
                break
            except ConnectError:
                if i == len(addresses) - 1:
                    raise
        if target.scheme == "https":
            try:
                sock = yield from self.handshake(sock, target.host)
            except BaseException:
                sock.close()  # a failed handshake leaves no socket open
                raise
        return Channel(sock, target.origin)

    def connect_to(self, address: Address) -> Generator[Future, Any, socket.socket]:
        sock, err = start_connect(address)
        try:
            if err and err in CONNECT_STARTED:  # 0: connected at once
                yield from self.wait(sock, EVENT_WRITE, self.config.connect_timeout, connect_timed_out)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise connect_failed(address[1], err)
        except BaseException:
            sock.close()  # a timeout or a refused connect leaves no socket open
            raise
        return sock

    def handshake(self, sock: socket.socket, host: str) -> Generator[Future, Any, ssl.SSLSocket]:
        if self.tls is None:
            self.tls = make_context(cacert=self.config.cacert, insecure=self.config.insecure)
        tls = self.tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        try:
            while events := handshake_step(tls):
                yield from self.wait(tls, events, self.config.connect_timeout, handshake_timed_out)
        except BaseException:
            tls.close()  # it owns the descriptor now
            raise
        return tls

    def send(self, channel: Channel, data: bytes) -> Generator[Future, Any, None]:
        view = memoryview(data)
        while view:
            try:
                view = view[channel.sock.send(view) :]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                yield from self.wait(channel.sock, EVENT_WRITE, self.config.read_timeout, send_timed_out)
            except OSError as exc:
                raise send_failed(exc) from None

    def receive(self, channel: Channel) -> Generator[Future, Any, bytes]:
        while True:
            try:
                return channel.sock.recv(RECV_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError):
                yield from self.wait(channel.sock, EVENT_READ, self.config.read_timeout, read_timed_out)
            except OSError as exc:
                raise receive_failed(exc, response_started=True) from None  # the procedure corrects it

    def release(self, op: Release) -> None:
        if op.reusable:
            op.channel.reused = True
            self.idle.setdefault(op.channel.origin, []).append(op.channel)
        else:
            op.channel.sock.close()

    def close(self) -> None:
        self.resolver.close()
        for channels in self.idle.values():
            for channel in channels:
                channel.sock.close()
        self.idle.clear()


def run(
    config: Config,
    records: Iterable[Record],
    open_sink: SinkFactory,
    on_result: ResultCallback,
    skip: SkipCheck | None = None,
) -> None:
    loop = EventLoop()
    io = AsyncIO(loop, config)
    context = JobContext(config, open_sink, skip)
    pending = iter(jobs(records, context, on_result))
    running = 0

    def start_next(result: FetchResult | None = None) -> None:
        nonlocal running
        if result is not None:
            running -= 1
            on_result(result)
        while running < config.concurrency:
            job = next(pending, None)
            if job is None:
                return
            running += 1
            Task(drive(fetch(job, context), io), start_next)

    loop.call_soon(start_next)
    try:
        loop.run(keep_alive=lambda: io.resolver.busy)
    finally:
        io.close()
        loop.close()
