"""Name resolution that never blocks the event loop.

``getaddrinfo`` has no non-blocking form, so it runs on a small thread pool and
hands its answer back through ``EventLoop.call_soon_threadsafe``.  No other
thread touches a socket or the selector.  One lookup per host and port per run:
answers are cached and concurrent askers share one lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from crawlsel.errors import CrawlError, ResolveError
from crawlsel.loop import EventLoop
from crawlsel.models import Address

Answer = list[Address] | CrawlError  # a ResolveError, or a ProxyError for a proxy's name
Callback = Callable[[Answer], None]
GetAddrInfo = Callable[..., list]


def family_for(ip_version: int | None) -> int:
    """-4 / -6 as a getaddrinfo family."""
    return {4: socket.AF_INET, 6: socket.AF_INET6}.get(ip_version or 0, socket.AF_UNSPEC)


def pinned_for(pins: tuple[tuple[str, int, str], ...]) -> dict[tuple[str, int], str]:
    """--resolve HOST:PORT:ADDR entries as a lookup table."""
    return {(host, port): address for host, port, address in pins}


class Resolver:
    def __init__(
        self,
        loop: EventLoop,
        *,
        workers: int = 4,
        family: int = socket.AF_UNSPEC,
        pinned: dict[tuple[str, int], str] | None = None,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,
    ) -> None:
        self._loop = loop
        self._workers = workers
        self._family = family
        self._pinned = pinned or {}
        self._getaddrinfo = getaddrinfo
        self._cache: dict[tuple[str, int], Answer] = {}
        self._waiting: dict[tuple[str, int], list[Callback]] = {}
        self._pool: Any = None

    @property
    def busy(self) -> bool:
        """Lookups are running on other threads (the loop must stay up for them)."""
        return bool(self._waiting)

    def lookup(self, host: str, port: int, callback: Callback) -> None:
        """Call ``callback`` on the loop thread with the addresses or a ``ResolveError``."""
        key = (host, port)
        if key in self._cache:
            callback(self._cache[key])
            return
        literal = self._literal(host, port)
        if literal is not None:
            self._cache[key] = literal
            callback(literal)
            return
        if key in self._waiting:
            self._waiting[key].append(callback)
            return
        self._waiting[key] = [callback]
        if self._pool is None:
            # Imported and started only when a name (not an address) needs resolving.
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="crawlsel-dns")
        self._pool.submit(self._run_lookup, key)

    def _literal(self, host: str, port: int) -> Answer | None:
        pinned = self._pinned.get((host, port))
        address = pinned if pinned is not None else host
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        if self._family not in (socket.AF_UNSPEC, family):
            return ResolveError(f"could not resolve host: {host} (address family not allowed)")
        sockaddr: tuple = (str(ip), port) if ip.version == 4 else (str(ip), port, 0, 0)
        return [(family, sockaddr)]

    def _run_lookup(self, key: tuple[str, int]) -> None:
        # Runs on a pool thread: touches nothing but its arguments and the loop's queue.
        answer = lookup_now(*key, family=self._family, getaddrinfo=self._getaddrinfo)
        self._loop.call_soon_threadsafe(self._deliver, key, answer)

    def _deliver(self, key: tuple[str, int], answer: Answer) -> None:
        self._cache[key] = answer
        for callback in self._waiting.pop(key, []):
            callback(answer)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def lookup_now(
    host: str, port: int, *, family: int = socket.AF_UNSPEC, getaddrinfo: GetAddrInfo = socket.getaddrinfo
) -> Answer:
    """A blocking lookup: the addresses in RFC 8305 order, or a ``ResolveError``."""
    try:
        infos = getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        quiet = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5))
        return ResolveError(f"could not resolve host: {host}" + ("" if quiet else f" ({exc.strerror})"))
    except (OSError, UnicodeError) as exc:
        return ResolveError(f"could not resolve host: {host} ({exc})")
    return _interleave([(info[0], info[4]) for info in infos]) or ResolveError(
        f"could not resolve host: {host}"
    )


def _interleave(addresses: list[Address]) -> list[Address]:
    """RFC 8305 4: alternate IPv6 and IPv4, starting with the family listed first."""
    seen: set[tuple] = set()
    unique = [a for a in addresses if not (a[1] in seen or seen.add(a[1]))]  # type: ignore[func-returns-value]
    if not unique:
        return []
    first = unique[0][0]
    a = [x for x in unique if x[0] == first]
    b = [x for x in unique if x[0] != first]
    out: list[Address] = []
    for i in range(max(len(a), len(b))):
        out.extend(a[i : i + 1] + b[i : i + 1])
    return out
