"""``Connection``: one socket to one origin and its HTTP/1.1 exchange state machine.

It sends requests (partial sends; pipelined requests leave in one send), reads
with one ``recv_into`` per readiness event, feeds the parser and acts on its
events after ``feed`` returns.  The socket comes from the ``connector.Connector``
given to ``open`` (the pool makes it: RFC 8305 racing, the TLS handshake); until
then requests queue.  A
``readwatch.ReadWatch`` keeps the read and low-speed timers, ``netboundary``
words the failures, ``--trace`` is a ``tracing.ConnectionTrace`` told what happens.

States (their table is ``connstate``'s) and the only moves between them::

    CONNECTING  -> SENDING | IDLE | CLOSED    (the connector at work)
    SENDING     -> RECEIVING | CLOSING | CLOSED
    RECEIVING   -> SENDING | IDLE | CLOSING | CLOSED
    IDLE        -> SENDING | CLOSING | CLOSED
    CLOSING     -> CLOSED

CLOSING is "the responses so far stand, no request follows" (the server closed,
did not keep the connection alive, or sent what answers nothing): the listener
hears of those responses, then the socket closes.  ``reusable`` is derived from
the state: neither CLOSING nor CLOSED.

A connection carries *exchanges* (one request each, from the dispatcher) in
order; with pipelining several may be in flight.  It never decides what to fetch
next: it tells its listener when exchanges completed and when the socket closed,
with the exchanges that got no complete answer.
"""

from __future__ import annotations

import itertools
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from crawlsel.connstate import CLOSED, CLOSING, CONNECTING, IDLE, RECEIVING, SENDING, IllegalTransition
from crawlsel.errors import CrawlError
from crawlsel.http11 import BODY, HEAD, Event, ResponseHead, ResponseParser, UnexpectedData
from crawlsel.loop import EVENT_READ, EVENT_WRITE, EventLoop
from crawlsel.netboundary import WOULD_BLOCK, internal_error, receive_failed, send_failed
from crawlsel.readwatch import ReadWatch

if TYPE_CHECKING:
    import ssl

    from crawlsel.connector import Connector
    from crawlsel.connstate import ConnectionListener, Exchange, State
    from crawlsel.tracing import ConnectionTrace


_ids = itertools.count(1)


class Connection:
    """A socket, its state, its parser and the exchanges it carries."""

    __slots__ = (
        "id",
        "origin",
        "state",
        "reusable",
        "sock",
        "fd",
        "responses",
        "last_activity",
        "_loop",
        "_listener",
        "_parser",
        "_inflight",
        "_completed",
        "_receiving",
        "_out",
        "_mask",
        "_buf",
        "_view",
        "_watch",
        "_trace",
        "_tls",
        "_connector",
        "_would_block",
        "bytes_in",
        "_flush_queued",
    )

    def __init__(
        self,
        loop: EventLoop,
        origin: tuple[str, str, int],
        listener: ConnectionListener,
        recv_buffer: bytearray,
        *,
        read_timeout: float,
        speed_limit: int = 0,
        speed_time: float = 30.0,
        trace: ConnectionTrace | None = None,
        parser: ResponseParser | None = None,
    ) -> None:
        self.id = next(_ids)
        self.origin = origin
        self.state = CONNECTING
        self.reusable = True  # it may take another request: neither CLOSING nor CLOSED (_to)
        self.sock: socket.socket | ssl.SSLSocket | None = None
        self.fd = -1
        self.responses = 0  # completed exchanges: > 0 means the connection was reused
        self._loop = loop
        self._listener = listener
        self._parser = parser if parser is not None else ResponseParser()  # get -i: one with RawHeads
        self._inflight: deque[Exchange] = deque()
        self._completed: list[tuple[Exchange, ResponseHead]] = []
        self._receiving: Any = None  # the Exchange whose response is arriving
        self._out = memoryview(b"")
        self._flush_queued = False  # queued requests leave after the turn's events
        self._mask = 0
        self._buf = recv_buffer
        self._view = memoryview(recv_buffer)
        self._watch = ReadWatch(self, loop, read_timeout, speed_limit, speed_time)
        self._trace = trace
        self._connector: Connector | None = None
        self._tls = False
        self._would_block = WOULD_BLOCK  # "try again when the selector says so"
        self.bytes_in = 0
        self.last_activity = loop.time()

    def __repr__(self) -> str:
        scheme, host, port = self.origin
        return f"<Connection #{self.id} {scheme}://{host}:{port} {self.state.name} fd={self.fd}>"

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._inflight)

    # --- state ---------------------------------------------------------------

    def _to(self, new: State) -> None:
        if new is self.state:
            return
        if new not in self.state.successors:  # type: ignore[attr-defined]
            raise IllegalTransition(f"{self!r}: cannot go from {self.state.name} to {new.name}")
        self.state = new
        self.reusable = new is not CLOSING and new is not CLOSED

    def _end_reuse(self) -> None:
        """No request follows: the responses so far stand, then the socket closes."""
        if self.state is not CLOSED:
            self._to(CLOSING)

    def _want(self, mask: int) -> None:
        if mask != self._mask:
            self._loop.modify(self.sock, mask, self)
            self._mask = mask

    # --- public API ----------------------------------------------------------

    def open(self, connector: Connector) -> None:
        """Start connecting with ``connector``, made for this connection as its owner
        (the pool makes it: addresses, RFC 8305 racing, TLS); failures arrive through
        the listener."""
        self._connector = connector
        if connector.tls is not None:
            from crawlsel import tls as tls_module  # ssl is loaded already: tls is a context

            self._tls = True
            self._would_block = tls_module.WOULD_BLOCK  # adds the ssl module's two
        connector.start()

    # --- ConnectorOwner --------------------------------------------------------

    def connected(self, sock: socket.socket, mask: int) -> None:
        """The connector's socket, registered for ``mask``: the exchanges start."""
        self._connector = None
        self.sock, self.fd, self._mask = sock, sock.fileno(), mask
        self._loop.modify(sock, mask, self)  # events come here now
        try:
            if self._inflight:
                self._start_sending()
            else:
                self._to(IDLE)
                self._want(EVENT_READ)
        except CrawlError as exc:
            self._lose(exc)
        except Exception as exc:  # a bug must fail one URL, never the whole run
            self._lose(internal_error(exc))

    def connect_failed(self, error: CrawlError) -> None:
        self._connector = None
        self._lose(error)

    def submit(self, exchange: Exchange) -> None:
        """Queue a request on this connection (pipelined when others are in flight)."""
        if not self.reusable:
            raise IllegalTransition(f"{self!r}: cannot take a request")
        if self._trace is not None and self.responses:
            self._trace.event("reused", exchange)
        self._inflight.append(exchange)
        self._parser.expect(exchange.method)
        if self._out:
            self._out = memoryview(bytes(self._out) + exchange.request)
        else:
            self._out = memoryview(exchange.request)
        if self.state is CONNECTING:
            return  # sent once connected
        if not self._flush_queued:
            # Sent once every socket ready in this turn has been read: requests queued
            # meanwhile (a pipelined connection topped up) leave in one send, and the
            # server is woken once for the turn's requests, not once per request.
            self._flush_queued = True
            self._loop.after_events(self._flush_queued_requests)

    def _flush_queued_requests(self) -> None:
        self._flush_queued = False
        if self._out and self.state is not CLOSED and self.state is not SENDING:
            try:
                self._start_sending()
            except CrawlError as exc:
                # Report on the next loop turn: the caller is in the middle of scheduling.
                self._loop.call_soon(self._lose, exc)

    def _start_sending(self) -> None:
        """Send what submit() queued; the read timeout counts from now."""
        self.last_activity = self._loop.time()
        self._watch.start()
        self._to(SENDING)
        self._send()

    def abort(self, error: CrawlError) -> None:
        """Close now; ``error`` goes to the first exchange, the others come back unanswered."""
        self._lose(error)

    def close(self) -> None:
        """Close the socket without telling the listener (the caller knows)."""
        if self.state is CLOSED:
            return
        self._to(CLOSED)  # a closed connection never goes back to a pool
        self._watch.stop()
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        if self.sock is not None:
            if self._mask:
                self._loop.unregister(self.sock)
                self._mask = 0
            self.sock.close()
        if self._trace is not None:
            self._trace.event("closed")

    # --- events --------------------------------------------------------------

    def on_ready(self, mask: int) -> None:
        trace = self._trace
        if trace is not None:
            trace.event("begin", mask)
        try:
            if mask & EVENT_WRITE and self._out:
                self._send()
            if mask & EVENT_READ and self.state is not CLOSED:
                self._receive()
        except CrawlError as exc:
            self._lose(exc)
        except Exception as exc:  # a bug must fail one URL, never the whole run
            self._lose(internal_error(exc))
        finally:
            if trace is not None:
                trace.event("end")

    def _send(self) -> None:
        assert self.sock is not None
        try:
            sent = self.sock.send(self._out)
        except self._would_block:
            self._want(EVENT_READ | EVENT_WRITE)
            return
        except OSError as exc:
            raise send_failed(exc) from None
        if self._trace is not None:
            self._trace.event("send", sent)
        self._out = self._out[sent:]
        if self._out:
            self._want(EVENT_READ | EVENT_WRITE)
        else:
            self._to(RECEIVING)
            self._want(EVENT_READ)

    def _receive(self) -> None:
        sock = self.sock
        assert sock is not None
        while True:
            try:
                n = sock.recv_into(self._buf)
            except self._would_block:
                return
            except OSError as exc:  # a TLS error or a reset (netboundary tells which)
                raise receive_failed(exc, response_started=self._parser.response_started) from None
            self._received(n)
            # TLS may hold decrypted bytes the selector cannot see: drain them now.
            if self.state is CLOSED or not self._tls or not sock.pending():  # type: ignore[attr-defined]
                return

    def _received(self, n: int) -> None:
        self.last_activity = self._loop.time()
        self.bytes_in += n
        parser = self._parser
        if n == 0:
            if self._trace is not None:
                self._trace.event("eof")
            self._end_reuse()
            error: CrawlError | None = None
            try:
                parser.feed_eof()
            except CrawlError as exc:
                error = exc
            error = self._act(parser.take_events()) or error
            if self._completed:  # an idle connection's end completes nothing
                self._deliver_completed()
            self._lose(error)
            return
        if self._trace is not None:
            self._trace.event("recv", n)
        try:
            parser.feed(self._view[:n])
        except UnexpectedData:
            self._end_reuse()  # the responses are complete; the connection is not
            error = None
        except CrawlError as exc:
            self._end_reuse()
            error = exc
        else:
            error = None
        failed = self._act(parser.take_events())
        if failed is not None:
            self._end_reuse()
            error = failed  # earlier in the stream than a fault the parser found after it
        if self._completed:
            self._deliver_completed()
        if self.state is CLOSING:
            self._lose(error)

    # --- acting on the parser's events, after llhttp returned ------------------

    def _act(self, events: list[Event]) -> CrawlError | None:
        """Hand heads and bodies to their exchanges; None, or what a job raised
        (a size limit, a file that cannot be written), which ends the connection."""
        try:
            for kind, value in events:
                if kind is BODY:
                    self._receiving.on_body(value)
                elif kind is HEAD:
                    self.response_head(value)
                else:
                    self.response_complete(value)
        except CrawlError as exc:
            return exc
        return None

    def response_head(self, head: ResponseHead) -> None:
        if self._trace is not None:
            self._trace.event("status", head)
        # Events come in order: a head belongs to the oldest exchange not yet complete.
        self._receiving = self._inflight[0]
        self._receiving.on_head(head)

    def response_complete(self, head: ResponseHead) -> None:
        # The listener hears of it once this connection's state is settled (_deliver_completed).
        self._completed.append((self._inflight.popleft(), head))
        self.responses += 1
        if not head.keep_alive:
            self._end_reuse()
        if self._out and len(self._out) > sum(len(later.request) for later in self._inflight):
            # The unsent bytes reach into this request: answered before it was fully
            # sent (a server that did not wait for the rest), which leaves what the
            # server made of the rest unknown. Unsent later requests do not count.
            self._end_reuse()

    def _deliver_completed(self) -> None:
        completed, self._completed = self._completed, []
        if not self._inflight and self.reusable:
            # The read timer stays armed: it finds nothing in flight when it fires
            # and lapses, so a keep-alive request costs no heap push or cancel.
            self._to(IDLE)
        if self._trace is not None:
            self._trace.event("complete", len(completed), self)
        self._listener.exchanges_complete(self, completed)

    # --- failures -------------------------------------------------------------

    def _lose(self, error: CrawlError | None) -> None:
        if self.state is CLOSED:
            return
        if self._trace is not None and error is not None:
            self._trace.event("error", error)
        self.close()
        exchanges = list(self._inflight)
        self._inflight.clear()
        self._listener.connection_lost(self, exchanges, error)
