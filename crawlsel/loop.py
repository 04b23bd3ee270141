"""``EventLoop``: one selector, a timer heap and a wake-up socket; nothing else.

The loop only registers file objects and dispatches readiness: for every event
it calls ``key.data.on_ready(mask)``, where ``data`` is the object (a connection)
that registered the file.  ``select()`` sleeps until the nearest timer.  Other
threads hand work in through ``call_soon_threadsafe``, which writes one byte to a
socket pair the selector watches.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


class Handler(Protocol):
    def on_ready(self, mask: int) -> None: ...


class Timer:
    """A callback due at a monotonic time; ``cancel()`` is O(1) (lazy deletion)."""

    __slots__ = ("when", "callback", "args", "cancelled", "background", "_loop")

    def __init__(
        self, loop: EventLoop, when: float, callback: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        self._loop = loop
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.background = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            # Drop references now: the heap entry may wait a long time to be popped.
            self.callback = _nothing
            self.args = ()
            self._loop.timer_cancelled(self)


def _nothing(*args: Any) -> None:
    pass


class OnReadable:
    """A handler that calls ``callback()`` when its descriptor is readable (a URL pipe with
    no complete line yet, a helper process's results)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def on_ready(self, mask: int) -> None:
        self.callback()


class _Waker:
    """The read end of the wake-up socket pair: drains the bytes other threads wrote."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def on_ready(self, mask: int) -> None:
        try:
            while self.sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass


class EventLoop:
    """Runs until ``stop()`` or until nothing is registered, scheduled or ready."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._live_timers = 0
        self._cancelled = 0  # cancelled entries still in the heap
        self._seq = itertools.count()
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._after_events: list[Callable[[], Any]] = []
        self._dispatching = False  # inside the dispatch of one select() batch
        self._stopping = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, EVENT_READ, _Waker(self._wake_r))
        self._internal = 1  # registrations that do not keep the loop alive
        self.time = time.monotonic

    # --- registration --------------------------------------------------------

    def register(self, fileobj: Any, events: int, handler: Handler) -> None:
        self._selector.register(fileobj, events, handler)

    def modify(self, fileobj: Any, events: int, handler: Handler) -> None:
        self._selector.modify(fileobj, events, handler)

    def unregister(self, fileobj: Any) -> None:
        self._selector.unregister(fileobj)

    @property
    def registered(self) -> int:
        """Number of file objects registered by users of the loop."""
        return len(self._selector.get_map()) - self._internal

    # --- scheduling ----------------------------------------------------------

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, background: bool = False
    ) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds.

        A ``background`` timer (a progress redraw) does not keep the loop running.
        """
        timer = Timer(self, self.time() + delay, callback, args)
        timer.background = background
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        if not background:
            self._live_timers += 1
        return timer

    def timer_cancelled(self, timer: Timer) -> None:
        """Account for a timer ``Timer.cancel`` marked cancelled; its heap entry stays
        until popped, or until cancelled entries are half the heap."""
        if not timer.background:
            self._live_timers -= 1
        self._cancelled += 1
        if self._cancelled > 1024 and self._cancelled * 2 > len(self._timers):
            self._compact_timers()

    def _compact_timers(self) -> None:
        """Drop cancelled entries (one per finished URL's deadline) from the heap."""
        self._timers = [entry for entry in self._timers if not entry[2].cancelled]
        heapq.heapify(self._timers)
        self._cancelled = 0

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self._ready.append((callback, args))

    def after_events(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once every event of the current select() batch has been
        handled (before timers and call_soon callbacks); outside a batch, at the next
        turn, before the loop waits."""
        if self._dispatching:
            self._after_events.append(callback)
        else:
            self._ready.append((callback, ()))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """The only method other threads may call."""
        with self._lock:
            self._ready.append((callback, args))
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the loop is awake anyway

    def stop(self) -> None:
        self._stopping = True

    def wake_on_signals(self) -> None:
        """Make a signal wake ``select()`` so its handler's ``stop()`` is seen at once."""
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)

    # --- running -------------------------------------------------------------

    def run(self, keep_alive: Callable[[], bool] | None = None) -> None:
        """Dispatch events until stopped or idle.

        ``keep_alive`` lets a caller hold the loop open while it has work that is
        not visible here (lookups running on other threads).
        """
        self._stopping = False
        select = self._selector.select
        ready = self._ready
        heappop = heapq.heappop
        while not self._stopping:
            while ready:
                with self._lock:
                    callback, args = ready.popleft()
                callback(*args)
            if self._stopping:
                break
            if not self.registered and not self._live_timers and not ready:
                if keep_alive is None or not keep_alive():
                    break
            # self._timers is read afresh each time: cancelling may rebuild it.
            while self._timers and self._timers[0][2].cancelled:
                heappop(self._timers)
                self._cancelled -= 1
            if ready:
                timeout: float | None = 0.0
            elif self._timers:
                timeout = max(0.0, self._timers[0][0] - self.time())
            else:
                timeout = None
            self._dispatching = True
            try:
                for key, mask in select(timeout):
                    key.data.on_ready(mask)
            finally:
                self._dispatching = False
            if self._after_events:
                after, self._after_events = self._after_events, []
                for callback in after:
                    callback()
            if self._timers and self._timers[0][0] <= self.time():
                now = self.time()
                while self._timers and self._timers[0][0] <= now:
                    timer = heappop(self._timers)[2]
                    if timer.cancelled:
                        self._cancelled -= 1
                        continue
                    timer.cancelled = True
                    if not timer.background:
                        self._live_timers -= 1
                    timer.callback(*timer.args)

    def close(self) -> None:
        self._selector.unregister(self._wake_r)
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()
