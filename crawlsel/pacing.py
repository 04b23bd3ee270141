"""``Pacing``: how long an origin's next request must wait (politeness).

One origin's request starts are spaced by the largest of ``--delay`` (spread
0.5-1.5x with ``--random-delay``, as wget's --random-wait), ``1 / --rate`` and
the Crawl-delay its robots.txt asks for; a 429 or 503 with Retry-After pauses
the whole origin, not only the URL that got it.  The dispatcher asks ``wait``
before starting a request and sets a timer for the answer: no busy waiting,
and other origins are never held up.  Without any of these, ``active`` is False
and the dispatcher does not ask.  ``SharedPauses`` carries the pauses between the
worker processes of ``fetch --workers N`` that share an origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crawlsel.hashtable import fingerprint

if TYPE_CHECKING:
    from crawlsel.loop import EventLoop, Timer

Origin = tuple[str, str, int]

# Heritrix honours a Crawl-delay up to 300 s (respectCrawlDelayUpToSeconds): a
# larger one would stall a crawl for hours on one line of one file.
MAX_CRAWL_DELAY = 300.0


class SharedPauses:
    """The Retry-After pauses of every worker of one run, in memory they all map.

    Made before the workers are forked (an anonymous shared mapping), so that a 429
    one worker gets holds the origin in the others too, at their next request to
    it, with no message between processes.  A slot per origin's fingerprint holds
    the monotonic time (one clock for every process of the machine) until which it
    is paused; two origins that share a slot pause together: too polite, never less.
    Slot 0 holds the latest end of any pause, so that a run with none (nearly every
    run) asks one number before a request, not a hash of its origin.
    """

    SLOTS = 4096  # 32 KiB

    __slots__ = ("_table",)

    def __init__(self) -> None:
        import mmap  # only workers need it: not start-up time

        self._table = memoryview(mmap.mmap(-1, self.SLOTS * 8)).cast("d")

    def pause(self, origin: Origin, until: float) -> None:
        table = self._table
        slot = 1 + fingerprint(origin) % (self.SLOTS - 1)
        if until > table[slot]:
            table[slot] = until
        if until > table[0]:
            table[0] = until

    def until(self, origin: Origin, now: float) -> float:
        """The end of the origin's pause; 0 when no pause anywhere lasts past ``now``."""
        table = self._table
        if table[0] <= now:
            return 0.0
        return table[1 + fingerprint(origin) % (self.SLOTS - 1)]


class Pacing:
    __slots__ = ("_base", "_random", "_asked", "_next", "_timers", "_shared", "active")

    def __init__(
        self,
        *,
        delay: float = 0.0,
        rate: float | None = None,
        random_delay: bool = False,
        shared: SharedPauses | None = None,
    ) -> None:
        self._base = max(delay, 1.0 / rate if rate else 0.0)
        self._random = random_delay
        self._asked: dict[Origin, float] = {}  # Crawl-delay per origin
        self._next: dict[Origin, float] = {}  # monotonic time the next start may happen
        self._timers: dict[Origin, Timer] = {}  # one wake-up per waiting origin
        self._shared = shared  # pauses other processes may set: asked before every start
        self.active = self._base > 0 or shared is not None

    def crawl_delay(self, origin: Origin, seconds: float) -> None:
        """The origin's robots.txt asked for this many seconds between requests."""
        if seconds > 0:
            self._asked[origin] = min(seconds, MAX_CRAWL_DELAY)
            self.active = True

    def pause(self, origin: Origin, seconds: float | None) -> None:
        """Start nothing on the origin for ``seconds`` (a 429 or 503 with Retry-After)."""
        if seconds is None:
            return
        until = time.monotonic() + seconds
        if until > self._next.get(origin, 0.0):
            self._next[origin] = until
        if self._shared is not None:
            self._shared.pause(origin, until)
        self.active = True

    def wait(self, origin: Origin, now: float) -> float:
        """Seconds before the origin's next request may start; 0 means now."""
        until = self._next.get(origin, 0.0)
        if self._shared is not None:
            until = max(until, self._shared.until(origin, now))
        return max(0.0, until - now)

    def hold(self, origin: Origin, loop: EventLoop, wake: Callable[..., Any], *args: Any) -> bool:
        """True if the origin's next request must wait; ``wake(*args)`` runs when it may
        start (a timer in the loop's heap, one per origin)."""
        wait = self.wait(origin, time.monotonic())
        if wait <= 0:
            return False
        if origin not in self._timers:
            self._timers[origin] = loop.call_later(wait, self._woken, origin, wake, args)
        return True

    def _woken(self, origin: Origin, wake: Callable[..., Any], args: tuple) -> None:
        del self._timers[origin]
        wake(*args)

    def started(self, origin: Origin, now: float) -> bool:
        """A request to the origin started; True if the next one must wait."""
        gap = max(self._base, self._asked.get(origin, 0.0))
        if gap <= 0:
            return False
        if self._random:
            import random  # only --random-delay needs it: not start-up time

            gap *= random.uniform(0.5, 1.5)
        self._next[origin] = now + gap
        return True
