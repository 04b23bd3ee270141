"""Tunnels through a proxy: HTTP ``CONNECT`` (RFC 9110 9.3.6), SOCKS5 (RFC 1928, 1929) and SOCKS4/4a.

Each handshake is sans-I/O: ``outgoing`` holds the bytes to send, ``sent(n)``
drops what left, ``feed(data)`` takes what arrived and returns True once the
tunnel is open; a refusal raises ``ProxyError`` naming the proxy.
``tunnel_step`` drives one over a non-blocking socket, as ``tls.handshake_step``
drives TLS, and says which selector event to wait for (0 once open).  Hand
written rather than socksio: three small fixed-layout exchanges, and socksio
has no HTTP CONNECT, so the connector would still need a second driver.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from crawlsel.errors import ProxyError
from crawlsel.loop import EVENT_READ, EVENT_WRITE
from crawlsel.models import Address, bracketed
from crawlsel.proxy import Proxy, auth_refused

WOULD_BLOCK = (BlockingIOError, InterruptedError)
MAX_CONNECT_HEAD = 64 * 1024  # a CONNECT answer's head; as http11's head limit

SOCKS5_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
SOCKS4_REPLIES = {
    0x5B: "request rejected or failed",
    0x5C: "request rejected: no identd on the client",
    0x5D: "request rejected: identd user mismatch",
}


class Handshake:
    """What every tunnel handshake shares: the proxy, the bytes to send, those received."""

    __slots__ = ("proxy", "host", "port", "outgoing", "_buffer")

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.proxy = proxy
        self.host = host
        self.port = port
        self.outgoing = b""
        self._buffer = b""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.proxy.display} -> {bracketed(self.host)}:{self.port}>"

    def sent(self, count: int) -> None:
        self.outgoing = self.outgoing[count:]

    def feed(self, data: bytes) -> bool:
        raise NotImplementedError

    def error(self, what: str) -> ProxyError:
        return ProxyError(f"proxy {self.proxy.display}: {what}")

    def closed(self) -> ProxyError:
        return self.error(f"closed the connection during the {self.name} handshake")

    @property
    def name(self) -> str:
        return "CONNECT"


class HTTPConnect(Handshake):
    """``CONNECT host:port``; any 2xx opens the tunnel."""

    __slots__ = ()

    def __init__(self, proxy: Proxy, host: str, port: int, user_agent: str) -> None:
        super().__init__(proxy, host, port)
        authority = f"{bracketed(host)}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {user_agent}"]
        credentials = proxy.authorization()
        if credentials is not None:
            lines.append(f"Proxy-Authorization: {credentials}")
        self.outgoing = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_CONNECT_HEAD:
                raise self.error("answered CONNECT with a head larger than 64 KiB")
            return False
        status_line = self._buffer[: self._buffer.find(b"\r\n")].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise self.error(f"answered CONNECT with something that is not HTTP: {status_line[:60]!r}")
        status = int(parts[1])
        if status == 407:
            raise ProxyError(auth_refused(self.proxy))
        if not 200 <= status < 300:
            reason = parts[2] if len(parts) > 2 else ""
            where = f"{bracketed(self.host)}:{self.port}"
            raise self.error(f"answered CONNECT {where} with {status} {reason}".rstrip())
        if len(self._buffer) > end + 4:  # the origin cannot speak before the client's TLS hello
            raise self.error("sent bytes after its CONNECT answer")
        return True


class Socks5(Handshake):
    """Greeting, optional username/password (RFC 1929), then CONNECT by name or address."""

    __slots__ = ("_phase", "_address")

    def __init__(self, proxy: Proxy, host: str, port: int, address: Address | None) -> None:
        super().__init__(proxy, host, port)
        self._address = address  # socks5://: resolved here; socks5h://: None, the proxy resolves
        methods = b"\x00\x02" if proxy.username is not None else b"\x00"
        self.outgoing = bytes([5, len(methods)]) + methods
        self._phase = "greeting"

    @property
    def name(self) -> str:
        return "SOCKS5"

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        while True:
            if self._phase == "greeting":
                if len(self._buffer) < 2:
                    return False
                version, method = self._buffer[0], self._buffer[1]
                self._buffer = self._buffer[2:]
                if version != 5:
                    raise self.error("is not a SOCKS5 server")
                if method == 2 and self.proxy.username is not None:
                    user = self.proxy.username.encode()[:255]
                    password = (self.proxy.password or "").encode()[:255]
                    self.outgoing = bytes([1, len(user)]) + user + bytes([len(password)]) + password
                    self._phase = "auth"
                    return False
                if method != 0:
                    if self.proxy.username is None:
                        raise self.error("requires authentication; give user:password in the proxy URL")
                    raise self.error("accepts none of the offered authentication methods")
                self._request()
            elif self._phase == "auth":
                if len(self._buffer) < 2:
                    return False
                if self._buffer[1] != 0:
                    raise self.error("refused the credentials (SOCKS5 username/password)")
                self._buffer = self._buffer[2:]
                self._request()
            else:
                return self._reply()

    def _request(self) -> None:
        if self._address is None:
            name = self.host.encode("idna")
            where = bytes([3, len(name)]) + name
        else:
            family, sockaddr = self._address
            packed = ipaddress.ip_address(sockaddr[0]).packed
            where = (b"\x01" if family == socket.AF_INET else b"\x04") + packed
        self.outgoing = b"\x05\x01\x00" + where + struct.pack("!H", self.port)
        self._phase = "reply"

    def _reply(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 5:
            return False
        if buffer[0] != 5:
            raise self.error("answered the SOCKS5 request with something else")
        if buffer[1] != 0:
            what = SOCKS5_REPLIES.get(buffer[1], f"error {buffer[1]}")
            raise self.error(f"could not reach {bracketed(self.host)}:{self.port}: {what}")
        size = {1: 4, 4: 16, 3: 1 + buffer[4]}.get(buffer[3])
        if size is None:
            raise self.error("answered with an unknown SOCKS5 address type")
        if len(buffer) < 4 + size + 2:
            return False
        if len(buffer) > 4 + size + 2:
            raise self.error("sent bytes after its SOCKS5 reply")
        return True


class Socks4(Handshake):
    """SOCKS4 with an IPv4 address resolved here, or SOCKS4a with the name for the proxy."""

    __slots__ = ("_address",)

    def __init__(self, proxy: Proxy, host: str, port: int, address: Address | None) -> None:
        super().__init__(proxy, host, port)
        user = (proxy.username or "").encode()
        if address is None:  # 4a: the invalid address 0.0.0.1 says "the name follows"
            request = struct.pack("!BBH4s", 4, 1, port, b"\x00\x00\x00\x01") + user + b"\x00"
            request += host.encode("idna") + b"\x00"
        else:
            packed = ipaddress.ip_address(address[1][0]).packed
            request = struct.pack("!BBH4s", 4, 1, port, packed) + user + b"\x00"
        self.outgoing = request

    @property
    def name(self) -> str:
        return "SOCKS4"

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        if len(self._buffer) < 8:
            return False
        code = self._buffer[1]
        if self._buffer[0] != 0 or code not in (0x5A, *SOCKS4_REPLIES):
            raise self.error("is not a SOCKS4 server")
        if code != 0x5A:
            raise self.error(f"could not reach {bracketed(self.host)}:{self.port}: {SOCKS4_REPLIES[code]}")
        if len(self._buffer) > 8:
            raise self.error("sent bytes after its SOCKS4 reply")
        return True


def handshake_for(
    proxy: Proxy, scheme: str, host: str, port: int, peer: Address | None, user_agent: str
) -> Handshake | None:
    """The handshake a connection to the origin needs through ``proxy``; None when the
    proxy forwards requests itself (an HTTP proxy and a plain-http URL)."""
    if proxy.scheme == "http":
        return HTTPConnect(proxy, host, port, user_agent) if scheme == "https" else None
    if proxy.scheme.startswith("socks5"):
        return Socks5(proxy, host, port, None if proxy.remote_dns else peer)
    return Socks4(proxy, host, port, None if proxy.remote_dns else peer)


def tunnel_step(sock: socket.socket, handshake: Handshake) -> int:
    """Advance a handshake on a non-blocking socket: the event to wait for, 0 once the tunnel is open."""
    while True:
        while handshake.outgoing:
            try:
                handshake.sent(sock.send(handshake.outgoing))
            except WOULD_BLOCK:
                return EVENT_WRITE
            except OSError as exc:
                raise handshake.error(
                    f"{exc.strerror or exc} during the {handshake.name} handshake"
                ) from None
        try:
            data = sock.recv(4096)
        except WOULD_BLOCK:
            return EVENT_READ
        except OSError as exc:
            raise handshake.error(f"{exc.strerror or exc} during the {handshake.name} handshake") from None
        if not data:
            raise handshake.closed()
        if handshake.feed(data):
            return 0
