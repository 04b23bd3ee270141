"""The event loop: dispatch to ``key.data``, timers, and wake-ups from other threads."""

from __future__ import annotations

import socket
import threading

from crawlsel.loop import EVENT_READ, EventLoop


def test_timers_fire_in_order_and_cancelled_ones_never() -> None:
    loop = EventLoop()
    fired: list[str] = []
    loop.call_later(0.03, fired.append, "late")
    loop.call_later(0.01, fired.append, "early")
    loop.call_later(0.02, fired.append, "cancelled").cancel()
    loop.run()
    loop.close()
    assert fired == ["early", "late"]


def test_run_returns_when_nothing_is_left() -> None:
    loop = EventLoop()
    loop.run()  # nothing registered, nothing scheduled
    loop.close()


def test_readiness_is_dispatched_to_the_registered_object() -> None:
    loop = EventLoop()
    a, b = socket.socketpair()

    class Reader:
        got = b""

        def on_ready(self, mask: int) -> None:
            assert mask & EVENT_READ
            self.got = a.recv(100)
            loop.unregister(a)

    reader = Reader()
    loop.register(a, EVENT_READ, reader)
    b.send(b"ping")
    loop.run()
    assert reader.got == b"ping"
    for s in (a, b):
        s.close()
    loop.close()


def test_call_soon_threadsafe_wakes_a_sleeping_select() -> None:
    loop = EventLoop()
    got: list[int] = []
    keep = threading.Event()
    keep.set()
    threading.Timer(0.05, lambda: loop.call_soon_threadsafe(lambda: (got.append(1), keep.clear()))).start()
    loop.run(keep_alive=keep.is_set)
    loop.close()
    assert got == [1]
