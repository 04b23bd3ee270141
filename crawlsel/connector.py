"""``Connector``: a host's addresses in, one connected (for https, handshaken) socket out.

``start()`` begins a non-blocking connect to the first address.  When a host has
several, a silent one is not waited for: after ``STAGGER_SECONDS`` the next is
raced (RFC 8305 section 5) and the first socket to connect wins; a refused one
falls back to the next at once.  With a TLS context the winner is wrapped and
handshaken.  Through a proxy the addresses are the proxy's, and a tunnel
handshake (``tunnel``: CONNECT or SOCKS) runs before TLS, which is then verified
against the origin's name; any failure before the tunnel is open is the proxy's
(``ProxyError``).  One timer covers all of it (``--connect-timeout``).

Phases and the only moves between them::

    CONNECTING  -> TUNNELLING | HANDSHAKING | DONE
    TUNNELLING  -> HANDSHAKING | DONE     (through a CONNECT or SOCKS proxy)
    HANDSHAKING -> DONE                   (https only)
    DONE                                  (handed over, failed or cancelled)

Exactly one of ``owner.connected(sock, mask)`` or ``owner.connect_failed(error)``
is called, unless ``cancel()`` came first.  The socket handed over is still
registered with the loop for ``mask``, its handler this connector: the owner
points the registration at itself (``loop.modify``; no system call when the
mask stays).  It knows nothing of HTTP.
"""

from __future__ import annotations

import enum
import socket
from collections import deque
from typing import TYPE_CHECKING, Protocol

from crawlsel.errors import ConnectError, CrawlError, ProxyError, ProxyUnreachable, Timeout
from crawlsel.loop import EVENT_WRITE, EventLoop, Timer
from crawlsel.models import Address
from crawlsel.netboundary import (
    CONNECT_STARTED,
    connect_failed,
    connect_timed_out,
    format_address,
    handshake_timed_out,
    internal_error,
    start_connect,
)

if TYPE_CHECKING:
    import ssl

    from crawlsel.proxy import Proxy
    from crawlsel.tracing import ConnectionTrace
    from crawlsel.tunnel import Handshake

# RFC 8305 section 5 recommends 250 ms before racing the next address.
STAGGER_SECONDS = 0.25


class Phase(enum.Enum):
    CONNECTING = "connecting"
    TUNNELLING = "tunnelling"
    HANDSHAKING = "handshaking"
    DONE = "done"


_MOVES: dict[Phase, tuple[Phase, ...]] = {
    Phase.CONNECTING: (Phase.TUNNELLING, Phase.HANDSHAKING, Phase.DONE),
    Phase.TUNNELLING: (Phase.HANDSHAKING, Phase.DONE),
    Phase.HANDSHAKING: (Phase.DONE,),
    Phase.DONE: (),
}


class ConnectorOwner(Protocol):
    def connected(self, sock: socket.socket, mask: int) -> None:
        """The socket is connected (and handshaken); it is the owner's now."""

    def connect_failed(self, error: CrawlError) -> None:
        """No address answered, or the handshake failed; every socket is closed."""


class _Racer:
    """A connect to another address of the host, racing the connector's own socket."""

    __slots__ = ("connector", "sock", "sockaddr")

    def __init__(self, connector: Connector, sock: socket.socket, sockaddr: tuple) -> None:
        self.connector = connector
        self.sock = sock
        self.sockaddr = sockaddr

    def on_ready(self, mask: int) -> None:
        connector = self.connector
        try:
            connector._racer_ready(self)
        except CrawlError as exc:
            connector._fail(exc)


class Connector:
    """The sockets tried for one connection until one is connected (and handshaken)."""

    __slots__ = (
        "phase",
        "sock",
        "sockaddr",
        "_loop",
        "_owner",
        "_addresses",
        "_timeout",
        "tls",
        "_server_hostname",
        "_trace",
        "_mask",
        "_timer",
        "_stagger",
        "_racers",
        "_proxy",
        "_tunnel",
    )

    def __init__(
        self,
        loop: EventLoop,
        addresses: list[Address],
        owner: ConnectorOwner,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_hostname: str = "",
        trace: ConnectionTrace | None = None,
        proxy: Proxy | None = None,
        tunnel: Handshake | None = None,
    ) -> None:
        self.phase = Phase.CONNECTING
        # The own socket: the latest address tried; None once it failed while racers go on.
        self.sock: socket.socket | ssl.SSLSocket | None = None
        self.sockaddr: tuple | None = None
        self._loop = loop
        self._owner = owner
        self._addresses = deque(addresses)
        self._timeout = timeout
        self.tls = tls  # read by the owner: a TLS socket has its own would-block errors
        self._server_hostname = server_hostname
        self._trace = trace
        self._mask = 0  # the events the own socket is registered for; 0 if it is not
        self._timer: Timer | None = None
        self._stagger: Timer | None = None
        self._racers: list[_Racer] = []
        self._proxy = proxy  # the addresses are its: failures before the tunnel are its own
        self._tunnel = tunnel

    def __repr__(self) -> str:
        return f"<Connector {self.phase.name} {format_address(self.sockaddr)} racers={len(self._racers)}>"

    def _to(self, new: Phase) -> None:
        if new not in _MOVES[self.phase]:
            raise RuntimeError(f"{self!r}: cannot go from {self.phase.name} to {new.name}")
        self.phase = new

    # --- public API ----------------------------------------------------------

    def start(self) -> None:
        """Start connecting; the outcome arrives through the owner, never from here."""
        try:
            self._connect_next()
        except ConnectError as exc:
            self._loop.call_soon(self._fail, exc)

    def cancel(self) -> None:
        """Close every socket and timer; the owner hears nothing."""
        if self.phase is not Phase.DONE:
            self._release()
            self._to(Phase.DONE)

    # --- connecting ----------------------------------------------------------

    def _connect_next(self) -> None:
        while True:
            address = self._addresses.popleft()
            sock, err = start_connect(address)
            self.sock, self.sockaddr = sock, address[1]
            if err in CONNECT_STARTED:
                break
            if not self._addresses:
                raise connect_failed(self.sockaddr, err)
            sock.close()
        self._loop.register(sock, EVENT_WRITE, self)
        self._mask = EVENT_WRITE
        if self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._on_timeout)
        if self._trace is not None:
            self._trace.event("connect", sock.fileno(), self.sockaddr)
        self._arm_stagger()

    def on_ready(self, mask: int) -> None:
        """The own socket is ready: its connect finished, or the handshake can go on."""
        trace = self._trace
        if trace is not None:
            trace.event("begin", mask)
        try:
            if self.phase is Phase.CONNECTING:
                self._finish_connect()
            elif self.phase is Phase.TUNNELLING:
                self._tunnel_step()
            elif self.phase is Phase.HANDSHAKING:
                self._handshake()
        except CrawlError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug must fail one URL, never the whole run
            self._fail(internal_error(exc))
        finally:
            if trace is not None:
                trace.event("end")

    def _finish_connect(self) -> None:
        sock = self.sock
        assert sock is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not err:
            self._connected()
            return
        if not self._addresses and not self._racers:
            raise connect_failed(self.sockaddr, err)
        # Another address of the same host may answer (RFC 8305 fallback).
        if self._trace is not None:
            self._trace.event("connect failed", err)
        self._loop.unregister(sock)
        self._mask = 0
        sock.close()
        self.sock = None
        if self._addresses:
            if self._stagger is not None:
                self._stagger.cancel()
                self._stagger = None
            self._connect_next()
        # else a racing attempt may still win

    # --- RFC 8305: after a head start, race the next address; the first to connect wins.

    def _arm_stagger(self) -> None:
        if self._addresses and self._stagger is None:
            self._stagger = self._loop.call_later(STAGGER_SECONDS, self._race_next)

    def _race_next(self) -> None:
        self._stagger = None
        if self.phase is not Phase.CONNECTING or not self._addresses:
            return
        address = self._addresses.popleft()
        sock, err = start_connect(address)
        if err not in CONNECT_STARTED:
            sock.close()
        else:
            racer = _Racer(self, sock, address[1])
            self._racers.append(racer)
            self._loop.register(sock, EVENT_WRITE, racer)
            if self._trace is not None:
                self._trace.event("race", sock.fileno(), address[1])
        self._arm_stagger()

    def _racer_ready(self, racer: _Racer) -> None:
        self._racers.remove(racer)
        self._loop.unregister(racer.sock)
        err = racer.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            racer.sock.close()
            if self.sock is None and not self._racers:  # the own socket failed too
                if not self._addresses:
                    raise connect_failed(racer.sockaddr, err)
                self._connect_next()
            return
        # The racer won: it becomes the own socket.
        if self.sock is not None:
            self._loop.unregister(self.sock)
            self.sock.close()
        self.sock, self.sockaddr = racer.sock, racer.sockaddr
        self._loop.register(racer.sock, EVENT_WRITE, self)
        self._mask = EVENT_WRITE
        self._connected()

    def _stop_racing(self) -> None:
        if self._stagger is not None:
            self._stagger.cancel()
            self._stagger = None
        for racer in self._racers:
            self._loop.unregister(racer.sock)
            racer.sock.close()
        self._racers.clear()

    # --- connected: TLS, then the hand-over ------------------------------------

    def _connected(self) -> None:
        sock = self.sock
        assert sock is not None
        self._stop_racing()
        if self._trace is not None:
            self._trace.event("connected", sock.fileno())
        if self._tunnel is not None:
            self._to(Phase.TUNNELLING)
            self._tunnel_step()
            return
        self._start_tls()

    def _tunnel_step(self) -> None:
        from crawlsel.tunnel import tunnel_step

        assert self._tunnel is not None
        if self._waiting(tunnel_step(self.sock, self._tunnel)):  # type: ignore[arg-type]
            return
        if self._trace is not None:
            self._trace.event("tunnel", self._tunnel)
        self._proxy = None  # the tunnel is open: what fails now is the origin's
        self._start_tls()

    def _start_tls(self) -> None:
        sock = self.sock
        assert sock is not None
        if self.tls is None:
            self._hand_over()
            return
        # The TLS layer wraps the same file descriptor; the selector is told of the
        # new object so that ``key.fileobj`` stays the socket that is read.
        self._loop.unregister(sock)
        self.sock = self.tls.wrap_socket(
            sock, server_hostname=self._server_hostname, do_handshake_on_connect=False
        )
        self._loop.register(self.sock, EVENT_WRITE, self)
        self._mask = EVENT_WRITE
        self._to(Phase.HANDSHAKING)
        self._handshake()

    def _waiting(self, waiting_for: int) -> bool:
        """A handshake step that needs the socket readable or writable (its mask) waits for it."""
        if waiting_for and waiting_for != self._mask:
            self._loop.modify(self.sock, waiting_for, self)
            self._mask = waiting_for
        return bool(waiting_for)

    def _handshake(self) -> None:
        from crawlsel.tls import handshake_step

        if self._waiting(handshake_step(self.sock)):  # type: ignore[arg-type]
            return
        if self._trace is not None:
            self._trace.event("tls", self.sock.version())  # type: ignore[union-attr]
        self._hand_over()

    def _hand_over(self) -> None:
        sock = self.sock
        assert sock is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sock = None  # the owner's now
        self._to(Phase.DONE)
        self._owner.connected(sock, self._mask)

    # --- failures ------------------------------------------------------------

    def _on_timeout(self) -> None:
        self._timer = None
        if self.phase is Phase.HANDSHAKING:
            self._fail(handshake_timed_out(self._timeout))
        else:
            self._fail(connect_timed_out(self._timeout))

    def _fail(self, error: CrawlError) -> None:
        if self.phase is Phase.DONE:
            return
        if self._proxy is not None and not isinstance(error, ProxyError):
            unreachable = isinstance(error, (ConnectError, Timeout)) and self.phase is Phase.CONNECTING
            error = (ProxyUnreachable if unreachable else ProxyError)(f"proxy {self._proxy.display}: {error}")
        self._release()
        self._to(Phase.DONE)
        self._owner.connect_failed(error)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stop_racing()
        if self.sock is not None:
            if self._mask:
                self._loop.unregister(self.sock)
                self._mask = 0
            self.sock.close()
            self.sock = None
