"""The ``blocking`` engine: one socket at a time, every call waits.

The tutorial's first program done right: a request is written with ``sendall``,
the response is read until its *framing* says it is complete (never until the
server closes), and a keep-alive connection is kept for the next URL of its
origin.  ``BlockingIO`` performs ``procedure.fetch``'s operations with plain
blocking calls; the threads engine runs one per thread.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from crawlsel.engines.procedure import (
    Channel,
    Connect,
    Operation,
    Procedure,
    Receive,
    Release,
    Send,
    drive,
    fetch,
)
from crawlsel.errors import CrawlError
from crawlsel.job import Job, JobContext, SinkFactory, SkipCheck
from crawlsel.models import Config, FetchResult, Target
from crawlsel.netboundary import (
    connect_blocking,
    handshake_failed,
    handshake_lost,
    handshake_timed_out,
    read_timed_out,
    receive_failed,
    send_failed,
)
from crawlsel.resolver import family_for, lookup_now, pinned_for
from crawlsel.sources import WaitForInput
from crawlsel.tls import make_context

if TYPE_CHECKING:
    from crawlsel.engines import Record, ResultCallback

RECV_BYTES = 256 * 1024


class BlockingIO:
    """Performs the procedure's operations with blocking calls; keeps one idle
    keep-alive connection per origin."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._idle: dict[tuple[str, str, int], Channel] = {}
        self._tls: ssl.SSLContext | None = None
        self._family = family_for(config.ip_version)
        self._pinned = pinned_for(config.pinned)

    def run(self, procedure: Procedure) -> FetchResult:
        driver = drive(procedure, self)
        try:
            next(driver)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("a blocking operation tried to wait")  # pragma: no cover

    def perform(self, op: Operation) -> Generator[None, None, Any]:
        """The operation done at once, as a generator that never yields (see drive)."""
        return self._perform(op)
        yield  # pragma: no cover - makes this a generator function

    def _perform(self, op: Operation) -> Any:
        if isinstance(op, Receive):
            return self._receive(op.channel)
        if isinstance(op, Send):
            try:
                op.channel.sock.sendall(op.data)
            except OSError as exc:
                raise send_failed(exc) from None
            return None
        if isinstance(op, Connect):
            return self._connect(op.target, op.fresh)
        if isinstance(op, Release):
            if op.reusable:
                op.channel.reused = True
                self._idle[op.channel.origin] = op.channel
            else:
                op.channel.sock.close()
            return None
        time.sleep(op.seconds)  # Sleep
        return None

    def _connect(self, target: Target, fresh: bool) -> Channel:
        idle = self._idle.pop(target.origin, None)
        if idle is not None:
            if not fresh:
                return idle
            idle.sock.close()
        address = self._pinned.get((target.host, target.port), target.host)
        answer = lookup_now(address, target.port, family=self._family)
        if isinstance(answer, CrawlError):
            raise answer
        sock = connect_blocking(answer, self._config.connect_timeout)
        if target.scheme == "https":
            sock = self._handshake(sock, target.host)
        sock.settimeout(self._config.read_timeout)
        return Channel(sock, target.origin)

    def _handshake(self, sock: socket.socket, host: str) -> socket.socket:
        if self._tls is None:
            self._tls = make_context(cacert=self._config.cacert, insecure=self._config.insecure)
        try:
            return self._tls.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise handshake_timed_out(self._config.connect_timeout) from None
        except ssl.SSLError as exc:
            sock.close()
            raise handshake_failed(exc) from None
        except OSError as exc:
            sock.close()
            raise handshake_lost(exc) from None

    def _receive(self, channel: Channel) -> bytes:
        try:
            return channel.sock.recv(RECV_BYTES)
        except TimeoutError:
            raise read_timed_out(self._config.read_timeout) from None
        except OSError as exc:
            raise receive_failed(exc, response_started=True) from None  # the procedure corrects it

    def close(self) -> None:
        for channel in self._idle.values():
            channel.sock.close()
        self._idle.clear()


def jobs(records: Iterable[Record], context: JobContext, on_result: ResultCallback) -> Iterable[Job]:
    """The URL list as jobs; invalid lines and skipped pages are reported at once."""
    for record in records:
        if isinstance(record, WaitForInput):
            select.select([record.fd], [], [])  # a blocking engine may simply wait
            continue
        admitted = context.admit(record)
        if isinstance(admitted, Job):
            yield admitted
        elif admitted is not None:
            on_result(admitted)


def run(
    config: Config,
    records: Iterable[Record],
    open_sink: SinkFactory,
    on_result: ResultCallback,
    skip: SkipCheck | None = None,
) -> None:
    context = JobContext(config, open_sink, skip)
    io = BlockingIO(config)
    try:
        for job in jobs(records, context, on_result):
            try:
                result = io.run(fetch(job, context))
            except BaseException:
                job.reset()  # Ctrl-C: no partial file under a final name
                raise
            on_result(result)
    finally:
        io.close()
