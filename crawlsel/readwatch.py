"""``ReadWatch``: a connection's read timeout and its low-speed watch (``--speed-limit``).

While requests are in flight on a connected socket two timers watch it, and
either fails it (``Connection.abort``) with netboundary's words:

- the read timeout: no byte for ``read_timeout`` seconds.  One timer, re-armed
  lazily: a read only updates the connection's ``last_activity``, so the event
  path never touches the timer heap; when the timer fires it re-arms for what is
  left of the period, or lapses when nothing is in flight (a keep-alive
  connection's next request then costs no heap push or cancel).
- curl's ``--speed-limit``/``--speed-time``: fewer than ``limit * period`` bytes
  (the connection's ``bytes_in``) over a whole period.

It reads the connection and its clock; it never touches the socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawlsel.loop import EventLoop, Timer
from crawlsel.netboundary import read_timed_out, too_slow

if TYPE_CHECKING:
    from crawlsel.connection import Connection


class ReadWatch:
    """The timers of one connection's requests in flight."""

    __slots__ = ("_conn", "_loop", "_read_timeout", "_timer", "_limit", "_period", "_speed_timer", "_checked")

    def __init__(
        self, conn: Connection, loop: EventLoop, read_timeout: float, speed_limit: int, speed_time: float
    ) -> None:
        self._conn = conn
        self._loop = loop
        self._read_timeout = read_timeout
        self._timer: Timer | None = None
        self._limit = speed_limit  # bytes a second; 0: no low-speed watch
        self._period = speed_time
        self._speed_timer: Timer | None = None
        self._checked = 0  # the connection's bytes_in when the period began

    def start(self) -> None:
        """Requests are in flight: watch them (what runs already goes on)."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._read_timeout, self._on_timer)
        if self._limit and self._speed_timer is None:
            self._checked = self._conn.bytes_in
            self._speed_timer = self._loop.call_later(self._period, self._check_speed)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._speed_timer is not None:
            self._speed_timer.cancel()
            self._speed_timer = None

    def _on_timer(self) -> None:
        self._timer = None
        conn = self._conn
        if not conn.inflight:
            return
        idle_for = self._loop.time() - conn.last_activity
        if idle_for >= self._read_timeout:
            conn.abort(read_timed_out(self._read_timeout))
        else:
            self._timer = self._loop.call_later(self._read_timeout - idle_for, self._on_timer)

    def _check_speed(self) -> None:
        self._speed_timer = None
        conn = self._conn
        if not conn.inflight:
            return
        if conn.bytes_in - self._checked < self._limit * self._period:
            conn.abort(too_slow(self._limit, self._period))
            return
        self._checked = conn.bytes_in
        self._speed_timer = self._loop.call_later(self._period, self._check_speed)
