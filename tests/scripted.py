"""A scripted byte-replay server on 127.0.0.1, port 0, for hostile-server tests.

Each accepted connection runs the next script of the list (the last one again
when the list runs out).  A script is a list of steps:

    ("expect",)            read one request head (up to the blank line); recorded
    ("send", bytes)        send bytes as they are
    ("drip", bytes, secs)  send one byte at a time, sleeping between bytes
    ("sleep", secs)        wait
    ("close",)             close the connection normally
    ("reset",)             close with SO_LINGER 0: the peer sees a reset
    ("stall",)             say nothing until the client goes away
    ("forever", bytes)     send bytes again and again until the client goes away
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time

from servers import read_head

Step = tuple


class ScriptedServer:
    def __init__(self, scripts: list[list[Step]], *, tls: ssl.SSLContext | None = None) -> None:
        self.scripts = scripts
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return self.base + path

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            for conn in self._open:
                try:
                    conn.close()
                except OSError:
                    pass

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self._open.append(conn)
            script = self.scripts[min(index, len(self.scripts) - 1)]
            threading.Thread(target=self._run, args=(conn, script), daemon=True).start()

    def _run(self, conn: socket.socket, script: list[Step]) -> None:
        buf = b""
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            for step in script:
                kind = step[0]
                if kind == "expect":
                    conn.settimeout(5)
                    got = read_head(conn, buf)
                    if got is None:
                        return
                    head, buf = got
                    with self._lock:
                        self.requests.append(head + b"\r\n\r\n")
                elif kind == "send":
                    conn.sendall(step[1])
                elif kind == "drip":
                    for i in range(len(step[1])):
                        conn.sendall(step[1][i : i + 1])
                        time.sleep(step[2])
                elif kind == "sleep":
                    time.sleep(step[1])
                elif kind == "close":
                    conn.close()
                    return
                elif kind == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                elif kind == "stall":
                    conn.settimeout(10)
                    while conn.recv(65536):
                        pass
                    return
                elif kind == "forever":
                    conn.settimeout(10)
                    while True:
                        conn.sendall(step[1])
                else:  # pragma: no cover
                    raise ValueError(kind)
            conn.settimeout(10)  # script done: keep the connection until the client closes
            while conn.recv(65536):
                pass
        except (OSError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def response(
    body: bytes = b"", status: str = "200 OK", headers: tuple[str, ...] = (), length: bool = True
) -> bytes:
    """An HTTP/1.1 response; Content-Length added unless ``length`` is False."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts if p) + b"0\r\n" + trailer + b"\r\n"
