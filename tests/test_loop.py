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


def test_after_events_runs_once_the_whole_batch_is_handled_and_before_call_soon() -> None:
    loop = EventLoop()
    pairs = [socket.socketpair() for _ in range(3)]
    order: list[str] = []

    class Reader:
        def __init__(self, name: str, sock: socket.socket) -> None:
            self.name, self.sock = name, sock

        def on_ready(self, mask: int) -> None:
            self.sock.recv(10)
            loop.unregister(self.sock)
            order.append(f"event {self.name}")
            loop.after_events(lambda: order.append(f"after {self.name}"))
            loop.call_soon(order.append, f"soon {self.name}")

    for i, (a, b) in enumerate(pairs):
        loop.register(a, EVENT_READ, Reader(str(i), a))
        b.send(b"x")  # all three are ready in the first select()
    loop.after_events(lambda: order.append("outside a batch"))  # runs at the next turn
    loop.run()
    loop.close()
    for a, b in pairs:
        a.close()
        b.close()
    events = sorted(e for e in order if e.startswith("event"))
    assert order[0] == "outside a batch"
    assert order[1:4] == [e for e in order if e.startswith("event")] and len(events) == 3
    assert [e.split()[0] for e in order[4:]] == ["after"] * 3 + ["soon"] * 3
