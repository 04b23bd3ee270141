"""Real servers on 127.0.0.1 (port 0) for end-to-end tests.

``HTTPTestServer`` is a small threaded HTTP/1.1 server with keep-alive whose
routes say how each body is framed; it counts connections and requests, and
records any byte a client writes after the server has answered "close".
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    reason: str = "OK"
    framing: str = "length"  # "length", "chunked" or "close" (body ends when the server closes)
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    chunk_size: int = 1000


class Gauge:
    """Connections open at once; one gauge may be shared by several servers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open_now = 0
        self.max_open = 0

    def opened(self) -> None:
        with self.lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)

    def closed(self) -> None:
        with self.lock:
            self.open_now -= 1


@dataclass
class Request:
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    raw: bytes
    at: float = field(default_factory=time.monotonic)  # when the head arrived (politeness tests)


class HTTPTestServer:
    def __init__(
        self,
        *,
        idle_timeout: float = 30.0,
        batch: int = 1,
        family: int = socket.AF_INET,
        gauge: Gauge | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.connections = 0
        self.gauge = gauge or Gauge()
        self.tls = tls
        self.handshakes = 0
        self.late_bytes: list[bytes] = []  # written by a client after a "close" response
        self.idle_timeout = idle_timeout
        self.batch = batch  # answer this many requests in one send (pipelining tests)
        # Answer every request already received in one send, never waiting for more
        # (a server that reads what is there, as nginx does with pipelined requests).
        self.coalesce = False
        self.close_after: int | None = None  # answer this many requests per connection, then close
        self.drop_after: int | None = None  # answer this many, then read the next request and close
        self._lock = threading.Lock()
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        self._sock.listen(1024)
        self.port = self._sock.getsockname()[1]
        host = "127.0.0.1" if family == socket.AF_INET else "[::1]"
        self.base = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes = b"", **kwargs: object) -> str:
        self.routes[path] = Route(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def requests_per_connection(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for request in self.requests:
            counts[request.connection] = counts.get(request.connection, 0) + 1
        return counts

    def close(self) -> None:
        self._closing = True
        try:
            self._sock.close()
        except OSError:
            pass

    # --- internals -----------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            self.gauge.opened()
            thread = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(self.idle_timeout)
        buf = b""
        answered = 0
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self.handshakes += 1
            while True:
                batch: list[tuple[Request, bool]] = []
                while len(batch) < self.batch:
                    got = read_head(conn, buf)
                    if got is None:
                        return
                    head, buf = got
                    request = _parse_request(number, head)
                    with self._lock:
                        self.requests.append(request)
                    if self.drop_after is not None and answered >= self.drop_after:
                        return  # read the request, answer nothing, close
                    close = request.headers.get("connection", "").lower() == "close"
                    batch.append((request, close))
                    answered += 1
                    if close:
                        break
                    if self.coalesce:
                        buf += _available(conn)
                        if b"\r\n\r\n" not in buf:
                            break
                out = b""
                close_now = False
                for request, close in batch:
                    route = self.routes.get(request.target) or self.routes.get(request.target.split("?")[0])
                    if route is None:
                        route = Route(body=b"not found", status=404, reason="Not Found")
                    if route.delay:
                        time.sleep(route.delay)
                    out += _render(route, request.method, close)
                    close_now = close_now or close or route.framing == "close"
                if self.close_after is not None and answered >= self.close_after:
                    close_now = True
                conn.sendall(out)
                if close_now:
                    self._finish_close(conn)
                    return
        except (OSError, TimeoutError):  # includes ssl.SSLError from a refused handshake
            return
        finally:
            conn.close()
            self.gauge.closed()

    def _finish_close(self, conn: socket.socket) -> None:
        """Half-close, then note anything the client still writes (it must not)."""
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(2.0)
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                with self._lock:
                    self.late_bytes.append(data)
        except OSError:
            return


def _available(conn: socket.socket) -> bytes:
    """What the client has sent already, without waiting.  (MSG_DONTWAIT would
    not do: a socket with a timeout waits for readiness when told EAGAIN.)"""
    if not select.select([conn], [], [], 0)[0]:
        return b""
    return conn.recv(65536)


def read_head(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
    """Read until a request head is complete: (head without the blank line, rest), or
    None when the client closed first."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _parse_request(number: int, head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(number, method, target, headers, head + b"\r\n\r\n")


def _render(route: Route, method: str, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {route.status} {route.reason}"]
    lines += [f"{name}: {value}" for name, value in route.headers]
    body = route.body if method != "HEAD" else b""
    if route.framing == "length":
        lines.append(f"Content-Length: {len(route.body)}")
        payload = body
    elif route.framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        payload = (
            b"".join(
                f"{len(body[i : i + route.chunk_size]):x}\r\n".encode()
                + body[i : i + route.chunk_size]
                + b"\r\n"
                for i in range(0, len(body), route.chunk_size)
            )
            + b"0\r\n\r\n"
        )
        if method == "HEAD":
            payload = b""
    else:
        payload = body
        close = True
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
