"""``ConnectionTrace``: ``--trace`` for one connection, an observer it reports to.

A connection and its connector tell what they did through one method,
``event(kind, *args)``; this module alone turns that into text for the run's
``Tracer`` (``report.TraceWriter``: one line with the socket's fd).  What happens
during one selector event, between ``"begin"`` and ``"end"``, is printed as one
line ("EVENT_READ -> recv 1234 B, status 200, response complete -> idle");
``"connect"``, ``"race"`` and ``"reused"``, and any event outside a selector
event, are lines of their own.  With tracing off a connection holds ``None``
here, and each place that reports costs it one attribute check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from crawlsel.loop import EVENT_WRITE
from crawlsel.netboundary import format_address

Tracer = Callable[[int, str], None]  # (fd, text): one line of --trace


class ConnectionTrace:
    """The trace of one connection: the fd its lines name and the current event's notes."""

    __slots__ = ("_write", "fd", "_notes", "_event")

    def __init__(self, write: Tracer) -> None:
        self._write = write
        self.fd = -1  # the socket the lines are about, as the connector reports it
        self._notes: list[str] | None = None  # inside a selector event: its line so far
        self._event = ""

    def event(self, kind: str, *args: Any) -> None:
        match kind:
            # -- a selector event's bracket
            case "begin":  # (mask,)
                self._notes = []
                self._event = "EVENT_WRITE" if args[0] == EVENT_WRITE else "EVENT_READ"
            case "end":
                self._flush()
                self._notes = None
            # -- lines of their own
            case "connect":  # (fd, sockaddr): the connection's own socket
                self.fd = args[0]
                self._write(self.fd, f"connect {format_address(args[1])} (in progress)")
            case "race":  # (fd, sockaddr): another address, racing (RFC 8305)
                self._write(args[0], f"connect {format_address(args[1])} (racing, RFC 8305)")
            case "reused":  # (exchange,)
                exchange = args[0]
                self._write(self.fd, f"reused for {exchange.method} {_request_target(exchange.request)}")
            # -- parts of the current event's line
            case "connected":  # (fd,): the socket that won
                self.fd = args[0]
                self._note("connected")
            case "connect failed":  # (errno,)
                self._note(f"connect failed: {os.strerror(args[0])}; trying the next address")
            case "tls":  # (version,)
                self._note(f"TLS handshake done ({args[0]})")
            case "tunnel":  # (handshake,): credentials never shown (Proxy.display)
                self._note(f"{args[0].name} tunnel open through {args[0].proxy.display}")
            case "send":  # (bytes,)
                self._note(f"send {args[0]} B")
            case "recv":  # (bytes,)
                self._note(f"recv {args[0]} B")
            case "eof":
                self._note("end of stream")
            case "status":  # (head,)
                head = args[0]
                expected = f", {head.content_length} B expected" if head.content_length is not None else ""
                self._note(f"status {head.status}{expected}")
            case "complete":  # (how many, the connection): said once per read, then printed
                count, conn = args
                if conn.state.name == "IDLE":
                    then = "idle"
                elif not conn.reusable:
                    then = "closing"
                else:
                    then = f"{conn.inflight} still in flight"  # pipelined
                for _ in range(count - 1):
                    self._note("response complete")
                self._note(f"response complete -> {then}")
                self._flush()
            case "error":  # (error,)
                self._note(f"error: {args[0]}")
            case "closed":
                self._note("closed")
            case _:
                raise ValueError(f"unknown trace event {kind!r}")

    def _note(self, text: str) -> None:
        """Part of the line for the current event, or a line of its own."""
        if self._notes is None:
            self._write(self.fd, text)
        else:
            self._notes.append(text)

    def _flush(self) -> None:
        if self._notes:
            self._write(self.fd, f"{self._event} -> " + ", ".join(self._notes))
            self._notes.clear()


def _request_target(request: bytes) -> str:
    line = request.split(b"\r\n", 1)[0].split(b" ")
    return line[1].decode("ascii", "replace") if len(line) > 1 else "?"
