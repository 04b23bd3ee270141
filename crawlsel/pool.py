"""``ConnectionPool``: the select engine's connections, per origin and in total.

It opens connections and makes their parts (a ``connector.Connector`` for the
addresses, one TLS context built on the first https origin, the ``--trace``
observer, ``get -i``'s parser; one shared receive buffer), keeps idle keep-alive ones in least-recently-used order,
picks one for an origin's next request (an idle one, or a pipelined one when no
new one may open), frees a slot by closing the oldest idle connection, and
remembers which origins wait for a slot.  Each origin has its route: direct or
one proxy (``Origin.route``), so keep-alive connections are pooled per proxy and
origin; ``resolve`` looks up the names that route needs.  It counts what the summary shows.  It
decides nothing about URLs: the dispatcher asks, the pool answers.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawlsel.connection import Connection
from crawlsel.connector import Connector
from crawlsel.connstate import ConnectionListener, IllegalTransition
from crawlsel.errors import CrawlError, ProxyError, ResolveError
from crawlsel.http11 import ResponseParser
from crawlsel.loop import EventLoop
from crawlsel.models import Address, Config
from crawlsel.resolver import Answer, Resolver

if TYPE_CHECKING:
    import ssl

    from crawlsel.job import Job
    from crawlsel.proxy import Proxy
    from crawlsel.tracing import Tracer

RECV_BUFFER_BYTES = 256 * 1024  # one buffer for every recv_into of the run


class Origin:
    """One scheme, host and port: its queue of jobs, its connections, its addresses."""

    __slots__ = ("key", "queue", "conns", "idle", "addresses", "resolving", "route", "peer")

    def __init__(self, key: tuple[str, str, int], route: Proxy | None = None) -> None:
        self.key = key
        self.queue: deque[Job] = deque()
        # Dicts as ordered sets: removing one of 10,000 connections is O(1).
        self.conns: dict[Connection, None] = {}
        self.idle: dict[Connection, None] = {}  # keep-alive connections waiting for a request
        self.addresses: Answer | None = None  # the proxy's, when there is one
        self.resolving = False
        self.route = route  # the proxy that carries its requests, None for direct
        self.peer: Address | None = None  # its own address, for a SOCKS proxy told addresses


class ConnectionPool:
    def __init__(
        self, loop: EventLoop, config: Config, listener: ConnectionListener, trace: Tracer | None
    ) -> None:
        self.config = config
        self._loop = loop
        self._listener = listener
        self._trace = trace
        self._buffer = bytearray(RECV_BUFFER_BYTES)
        self._tls: ssl.SSLContext | None = None
        self.origins: dict[tuple[str, str, int], Origin] = {}
        self._idle: OrderedDict[Connection, None] = OrderedDict()  # least recently used first
        self._starved: deque[Origin] = deque()  # origins waiting for a global slot
        self.open = 0
        self.peak_open = 0
        self.connections_opened = 0
        self.connections_by_host: dict[str, int] = {}

    def origin(self, key: tuple[str, str, int]) -> Origin:
        origin = self.origins.get(key)
        if origin is None:
            proxies = self.config.proxies
            route = proxies.for_origin(key[0], key[1]) if proxies is not None else None
            origin = self.origins[key] = Origin(key, route)
        return origin

    def resolve(self, origin: Origin, resolver: Resolver, done: Callable[[Origin, Answer], None]) -> None:
        """Look up what connecting to the origin needs: its addresses, or its proxy's
        (and, for socks4:// and socks5://, which are given addresses, its own too)."""
        _, host, port = origin.key
        route = origin.route
        if route is None:
            resolver.lookup(host, port, lambda answer: done(origin, answer))
            return

        def proxy_found(answer: Answer) -> None:
            if isinstance(answer, CrawlError):
                done(origin, ProxyError(f"proxy {route.display}: {answer}"))
            elif route.remote_dns:
                done(origin, answer)
            else:
                resolver.lookup(host, port, lambda peer: peer_found(answer, peer))

        def peer_found(proxy_addresses: list[Address], peer: Answer) -> None:
            if not isinstance(peer, CrawlError):
                usable = [a for a in peer if route.scheme == "socks5" or len(a[1]) == 2]
                if not usable:
                    peer = ResolveError(f"{host} has no IPv4 address, which SOCKS4 needs ({route.display})")
                else:
                    origin.peer = usable[0]
            done(origin, peer if isinstance(peer, CrawlError) else proxy_addresses)

        resolver.lookup(route.host, route.port, proxy_found)

    # --- choosing a connection -------------------------------------------------

    def acquire(self, origin: Origin) -> Connection | None:
        """A connection for the origin's next request: an idle one, a pipelined one
        when no new one may open, or a new one within the limits; None when the
        origin waits (its connections, or a free slot, come back for more)."""
        config = self.config
        if origin.idle and config.keep_alive:
            conn = origin.idle.popitem()[0]  # the most recently used: its socket is warm
            del self._idle[conn]
            return conn
        if len(origin.conns) >= config.per_host:
            if config.pipeline > 1 and config.keep_alive:
                return self._pipelined(origin)
            return None
        return self.connect(origin) if self._may_open(origin) else None

    def _pipelined(self, origin: Origin) -> Connection | None:
        """Every connection is busy and no new one may open: pipeline on one."""
        pipeline = self.config.pipeline
        for conn in origin.conns:
            if conn.reusable and conn.inflight < pipeline:
                return conn
        return None

    def _may_open(self, origin: Origin) -> bool:
        """Whether a connection may open below the per-origin limit now (an idle one
        of another origin is closed if that frees the slot); False, and the origin
        waits for a slot, when not."""
        if self.open >= self.config.concurrency:
            if not self._idle or not self.retire(next(iter(self._idle))):
                if origin not in self._starved:
                    self._starved.append(origin)
                return False
        return True

    def next_starved(self) -> Origin | None:
        """An origin that waited for a slot, once one is free."""
        if self._starved and self.open < self.config.concurrency:
            return self._starved.popleft()
        return None

    @property
    def has_starved(self) -> bool:
        return bool(self._starved)

    # --- opening, parking, closing -------------------------------------------

    def connect(self, origin: Origin) -> Connection:
        assert isinstance(origin.addresses, list)
        config = self.config
        trace = None
        if self._trace is not None:
            from crawlsel.tracing import ConnectionTrace  # --trace only: not start-up time

            trace = ConnectionTrace(self._trace)
        parser = None
        if config.raw_heads or config.warc:  # get -i and --warc only: fetch never loads it
            from crawlsel.rawhead import RawHeads, WireTap

            parser = ResponseParser(WireTap() if config.warc else RawHeads())
        conn = Connection(
            self._loop,
            origin.key,
            self._listener,
            self._buffer,
            read_timeout=config.read_timeout,
            speed_limit=config.speed_limit,
            speed_time=config.speed_time,
            trace=trace,
            parser=parser,
        )
        connector = Connector(
            self._loop,
            origin.addresses,
            conn,
            timeout=config.connect_timeout,
            tls=self._tls_context() if origin.key[0] == "https" else None,
            server_hostname=origin.key[1],
            trace=trace,
            **self._proxy_parts(origin),
        )
        origin.conns[conn] = None
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        self.connections_opened += 1
        host = origin.key[1]
        self.connections_by_host[host] = self.connections_by_host.get(host, 0) + 1
        conn.open(connector)
        return conn

    def _proxy_parts(self, origin: Origin) -> dict:
        """The connector's proxy and tunnel handshake for an origin reached through a proxy."""
        route = origin.route
        if route is None:
            return {}
        from crawlsel.tunnel import handshake_for  # proxied runs only

        scheme, host, port = origin.key
        tunnel = handshake_for(route, scheme, host, port, origin.peer, self.config.user_agent)
        return {"proxy": route, "tunnel": tunnel}

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # built once, on the first https origin
            from crawlsel.tls import make_context  # loads ssl: plain-HTTP runs never do

            self._tls = make_context(cacert=self.config.cacert, insecure=self.config.insecure)
        return self._tls

    def park(self, conn: Connection) -> None:
        if not conn.reusable:
            raise IllegalTransition(f"{conn!r}: a connection that cannot be reused is never parked")
        self._idle[conn] = None
        self.origins[conn.origin].idle[conn] = None

    def retire(self, conn: Connection) -> bool:
        """Close an idle connection to free its slot; False if it is busy."""
        if conn.inflight:
            return False
        self._unpark(conn)
        conn.close()
        self._forget(conn)
        return True

    def retire_idle(self) -> None:
        for conn in list(self._idle):
            self.retire(conn)

    def lost(self, conn: Connection) -> Origin:
        """A connection closed (by the server, an error, a timeout): its slot is free."""
        self._unpark(conn)
        self._forget(conn)
        return self.origins[conn.origin]

    def _unpark(self, conn: Connection) -> None:
        if self._idle.pop(conn, False) is None:
            del self.origins[conn.origin].idle[conn]

    def _forget(self, conn: Connection) -> None:
        del self.origins[conn.origin].conns[conn]
        self.open -= 1
