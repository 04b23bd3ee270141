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
from collections.abc import Callable, Generator, Iterable
from typing import Any

from crawlsel.connection import connect_message
from crawlsel.engines.procedure import Connect, Procedure, Receive, Release, Send, Sleep, drive
from crawlsel.errors import ConnectError, ConnectionClosed, ConnectionReset, CrawlError, Timeout
from crawlsel.job import Job, JobContext
from crawlsel.models import Config, FetchResult, InvalidLine, Target
from crawlsel.resolver import family_for, lookup_now, pinned_for
from crawlsel.sources import WaitForInput
from crawlsel.tls import describe, make_context

RECV_BYTES = 256 * 1024


class Channel:
    __slots__ = ("sock", "origin", "reused")

    def __init__(self, sock: socket.socket, origin: tuple[str, str, int]) -> None:
        self.sock = sock
        self.origin = origin
        self.reused = False


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
        driver = drive(procedure, self._perform_now)
        try:
            next(driver)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("a blocking operation tried to wait")  # pragma: no cover

    def _perform_now(self, op: Any) -> Generator[None, None, Any]:
        """The operation done at once, as a generator that never yields (see drive)."""
        return self._perform(op)
        yield  # pragma: no cover - makes this a generator function

    def _perform(self, op: Any) -> Any:
        if isinstance(op, Receive):
            return self._receive(op.channel)
        if isinstance(op, Send):
            try:
                op.channel.sock.sendall(op.data)
            except OSError as exc:
                raise send_error(exc) from None
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
        if isinstance(op, Sleep):
            time.sleep(op.seconds)
            return None
        raise TypeError(op)

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
        timeout = self._config.connect_timeout
        for i, (family, sockaddr) in enumerate(answer):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(sockaddr)
                break
            except TimeoutError:
                sock.close()
                raise Timeout(f"connect timed out after {timeout:g} s") from None
            except OSError as exc:
                sock.close()
                if i == len(answer) - 1:
                    raise ConnectError(connect_message(sockaddr, exc.errno or 0)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
            raise Timeout(f"TLS handshake timed out after {self._config.connect_timeout:g} s") from None
        except ssl.SSLError as exc:
            sock.close()
            raise describe(exc) from None
        except OSError as exc:
            sock.close()
            raise ConnectError(f"connection lost during the TLS handshake ({exc.strerror or exc})") from None

    def _receive(self, channel: Channel) -> bytes:
        try:
            return channel.sock.recv(RECV_BYTES)
        except TimeoutError:
            raise Timeout(f"no data from server for {self._config.read_timeout:g} s") from None
        except OSError as exc:
            raise receive_error(exc) from None

    def close(self) -> None:
        for channel in self._idle.values():
            channel.sock.close()
        self._idle.clear()


def send_error(exc: OSError) -> ConnectionClosed:
    return ConnectionReset(
        f"connection lost while sending the request ({exc.strerror or exc})", response_started=False
    )


def receive_error(exc: OSError) -> ConnectionClosed:
    """The same words as the select engine; the procedure corrects response_started."""
    if isinstance(exc, ssl.SSLError):
        return ConnectionClosed(f"TLS error while receiving ({exc.reason or exc})", response_started=True)
    return ConnectionReset(f"connection reset by server ({exc.strerror or exc})", response_started=True)


def jobs(
    records: Iterable[Any], context: JobContext, on_result: Callable[[FetchResult], None]
) -> Iterable[Job]:
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
    records: Iterable[Target | InvalidLine | WaitForInput],
    open_sink: Any,
    on_result: Callable[[FetchResult], None],
    skip: Any = None,
) -> None:
    from crawlsel.engines.procedure import fetch

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
