"""One Connection on a real loop and a real socket, driven directly: the cases that
depend on the order of events inside one turn of the loop."""

from __future__ import annotations

import socket
import time

from scripted import ScriptedServer, response

from crawlsel.connection import Connection
from crawlsel.connector import Connector
from crawlsel.http11 import ResponseHead
from crawlsel.loop import EVENT_READ, EventLoop


class Exchange:
    def __init__(self, path: str) -> None:
        self.method = "GET"
        self.request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        self.body = b""

    def on_head(self, head: ResponseHead) -> None:
        pass

    def on_body(self, data: bytes) -> None:
        self.body += data


class Listener:
    def __init__(self) -> None:
        self.completed: list[Exchange] = []
        self.lost: list[tuple[list, object]] = []

    def exchanges_complete(self, conn: Connection, completed: list[tuple[Exchange, ResponseHead]]) -> None:
        self.completed.extend(exchange for exchange, _ in completed)
        if len(self.completed) == 2:
            conn.close()  # done: let the loop end

    def connection_lost(self, conn: Connection, exchanges: list, error: object) -> None:
        self.lost.append((exchanges, error))


def test_a_request_queued_earlier_in_the_turn_does_not_make_an_answered_connection_unusable() -> None:
    """Another socket's event queues a request on the connection (it leaves after the
    turn's events); the connection's own event, later in the same turn, completes the
    response to its earlier request. The connection stays usable and sends the new
    request: only a response to a request not yet fully sent would make it unusable."""
    server = ScriptedServer(
        [
            [
                ("expect",),
                ("sleep", 0.05),
                ("send", response(b"first")),
                ("expect",),
                ("send", response(b"second")),
            ]
        ]
    )
    loop = EventLoop()
    listener = Listener()
    conn = Connection(loop, ("http", "127.0.0.1", server.port), listener, bytearray(65536), read_timeout=5)
    connector = Connector(loop, [(socket.AF_INET, ("127.0.0.1", server.port))], conn, timeout=5)
    first, second = Exchange("/first"), Exchange("/second")
    waker_r, waker_w = socket.socketpair()

    class QueueSecond:
        def on_ready(self, mask: int) -> None:
            waker_r.recv(1)
            loop.unregister(waker_r)
            conn.submit(second)

    def hold_the_loop() -> None:
        # Make the other socket ready first, then keep the loop busy until the
        # response has arrived too: the next select() returns both, in that order.
        waker_w.send(b"x")
        time.sleep(0.15)

    try:
        conn.open(connector)
        conn.submit(first)
        loop.register(waker_r, EVENT_READ, QueueSecond())
        loop.call_later(0.02, hold_the_loop)
        loop.run()
    finally:
        loop.close()
        waker_r.close()
        waker_w.close()
        server.close()
    assert [e.body for e in listener.completed] == [b"first", b"second"]
    assert server.connections == 1
    assert listener.lost == []
