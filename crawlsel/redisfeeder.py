"""The worker's helper thread: every blocking Redis call, off the event loop.

The loop never waits for Redis.  ``Feeder`` runs on its own thread and hands
work to the loop through ``inbox``, writing one byte to a pipe whose read end is
the frontier's ``wait_fd``, as the resolver's threads hand back addresses.  The
loop hands each entry's end back with ``settle_one``; the thread takes the ends
every 10 ms.  Both queues are deques the loop only appends to or pops from, with
no lock: one deque call is atomic under the GIL (the lock taken twice a page was
3 % of the loop's samples in a py-spy profile of 30,000 pages).  Each turn of the thread:

1. settles what the loop finished (one Lua call: XACK + XDEL + record, or retry,
   or dead letter) and keeps the batch until Redis confirmed it;
2. every lease/3: heartbeat, renews its partition leases (a lapsed one is taken
   back; one another worker holds is given up);
3. every second: takes partitions up to its share (``ceil(S / live workers)``),
   and drains the ones over it: no more reads, released once nothing of it is held,
   so that one host is never fetched by two workers at once;
4. every claim-after/4: claims entries of its partitions idle longer than
   claim-after (a dead worker's), dead-lettering those delivered max times;
5. moves due retries back to their streams, reads new entries while it holds
   fewer than ``max_held``, and asks whether the job is done (``{p}:out`` is 0).

Redis down or restarting: one line naming the Redis URL, then retries every
0.5-2 s; nothing is lost, as an entry ends only by a confirmed settle.  After an
outage the thread reads its own pending entries again (a read whose reply was
lost would otherwise stay pending for ever).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from crawlsel.models import Target
from crawlsel.redisclaim import claim_idle, own_pending
from crawlsel.redisentries import Entry, Item, handback_item
from crawlsel.redisjob import (
    ENQUEUE,
    GROUP,
    PROMOTE,
    READ,
    SETTLE,
    Keys,
    describe,
    enqueue_args,
    ensure_groups,
    ensure_job,
    load_redis,
    shown_url,
    transient_errors,
)
from crawlsel.redislease import Leases
from crawlsel.redisscript import FastScript

BALANCE_SECONDS = 1.0
START_SECONDS = 0.2
PROMOTE_SECONDS = 0.25
DONE_CHECK_SECONDS = 0.2
IDLE_WAIT = 0.05  # the thread's longest sleep with nothing to do: the latency of new work
# The shortest time between two turns while work is held: Redis calls in batches of
# 10 ms of pages, not one per loop turn.  Each call costs the thread ~50-100 us of
# Python, taken from the loop's GIL; at one per loop turn a worker spent 100 us of
# CPU a page more than fetch (30,000 pages, 64 origins: 0.55x its pages/s).
TURN_SECONDS = 0.01


class Feeder:
    def __init__(
        self,
        client: Any,
        url: str,
        keys: Keys,
        name: str,
        *,
        max_held: int,
        per_partition: int,
        claim_after: float,
        max_deliveries: int,
        lease: float,
        forever: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.client = client
        self.url = shown_url(url)
        self.keys = keys
        self.name = name
        self._me = name.encode()
        self.max_held = max_held
        self.per_partition = per_partition
        self.claim_ms = int(claim_after * 1000)
        self.max_deliveries = max_deliveries
        self.lease_ms = int(lease * 1000)
        self.forever = forever
        self._warn = warn
        self.lock = threading.Lock()
        self.inbox: deque[Entry] = deque()
        self._outbox: deque[Item] = deque()  # from the loop, no lock: only appended and popped
        self._settling: list[Item] = []  # taken from the outbox, not yet confirmed
        # A crawl's found URLs (field None: only seen), from the loop under lock, then
        # being enqueued: always sent before the settles taken with them, so that a
        # page's links are counted in {p}:out before the page is taken out of it.
        self._found: list[tuple[Target, bytes | None]] = []
        self._adding: list[tuple[Target, bytes | None]] = []
        self.done = False  # the job is done (or Redis refused us for good: fatal)
        self.fatal: str | None = None
        self.settled = 0
        self.claimed = 0  # entries taken from a stopped worker: it may have left temporary files
        self.wake_r, self._wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crawlsel-redis", daemon=True)
        self.leases = Leases(client, keys, name, lease)
        self._held: dict[tuple[bytes, bytes], int] = {}  # (stream, id) -> partition
        self._held_per: dict[int, int] = {}
        self._resync = False
        self._next: dict[str, float] = {}
        self._rate_mark = (time.monotonic(), 0)
        redis = load_redis()
        self._transient = transient_errors()
        self._fatal_errors = (redis.RedisError,)
        self._settle_script = FastScript(client, SETTLE)
        self._enqueue_script = client.register_script(ENQUEUE)
        self._promote_script = client.register_script(PROMOTE)
        self._read_script = FastScript(client, READ)

    # --- the loop's side -----------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def drain_wake(self) -> None:
        """Empty the pipe the thread writes to wake the loop (its fd is ``wake_r``)."""
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def pop(self, room: int) -> list[Entry]:
        inbox = self.inbox
        taken = []
        try:
            for _ in range(room):
                taken.append(inbox.popleft())
        except IndexError:
            pass
        if not inbox and not self._kick.is_set():
            # Ran dry: read now.  (Not sooner: a kick at each take made the thread turn
            # at each loop turn, its calls a few entries each.)
            self._kick.set()
        return taken

    def add_found(self, target: Target, field: bytes | None) -> None:
        """Queue a URL a crawl found (once per job: the seen set decides in Redis)."""
        with self.lock:
            self._found.append((target, field))

    def settle_one(self, item: Item) -> None:
        self._outbox.append(item)

    def kick(self) -> None:
        self._kick.set()

    def close(self, handed_back: list[Item], timeout: float = 10.0) -> None:
        """Hand back what was not finished, settle everything, release the leases, stop."""
        with self.lock:
            back = [handback_item(e) for e in self._take_inbox()]
            self._outbox.extend(handed_back + back)
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout)

    # --- the thread ----------------------------------------------------------

    def _run(self) -> None:
        delay, said = 0.5, ""
        prepared = False
        while True:
            stopping = self._stop.is_set()
            try:
                if not prepared:
                    self.leases.partitions = ensure_job(self.client, self.keys)
                    prepared = True
                busy = self._turn(stopping)
                if said:
                    self._warn(f"{self.url}: connected again")
                    said, delay = "", 0.5
                    self._resync = True
                if stopping:
                    self._finish()
                    return
            except self._transient as exc:
                message = f"{self.url}: {describe(exc)}; retrying in {delay:g} s"
                if message != said:
                    self._warn(message)
                    said = message
                if stopping and self._stop_deadline_passed():
                    return
                self._stop_wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            except self._fatal_errors as exc:
                self.fatal = f"{self.url}: {describe(exc)}"
                self._signal_done()
                return
            self._kick.wait(TURN_SECONDS if busy or self._held else IDLE_WAIT)
            self._kick.clear()

    def _stop_wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (self._stop.is_set() and self._settled_all()):
            time.sleep(0.05)

    def _stop_deadline_passed(self) -> bool:
        start = self._next.setdefault("stop", time.monotonic())
        return time.monotonic() - start > 10.0

    def _settled_all(self) -> bool:
        return not self._outbox and not self._settling and not self._found and not self._adding

    def _due(self, what: str, every: float, now: float) -> bool:
        if now < self._next.get(what, 0.0):
            return False
        self._next[what] = now + every
        return True

    def _turn(self, stopping: bool) -> bool:
        now = time.monotonic()
        busy = settled = self._settle()
        if stopping:
            return busy
        if self._resync:
            self._recover_own()
            self._resync = False
        if self._due("lease", self.lease_ms / 3000, now):
            self._heartbeat()
        if "balance" not in self._next:
            # Workers started together see each other's heartbeat before taking
            # partitions: the first would otherwise take all and hand most back.
            self._next["balance"] = now + START_SECONDS
        if self._due("balance", BALANCE_SECONDS, now):
            if self.leases.gained:
                self._next["claim"] = 0.0  # maybe a dead worker's partitions: look at their entries
            self._balance()
        if self._due("claim", max(0.1, self.claim_ms / 4000), now):
            busy |= self._claim()
        if self._due("promote", PROMOTE_SECONDS, now):
            self._promote_script(args=[self.keys.retry, int(time.time() * 1000), 1000])
        busy |= self._read()
        if not self.forever and not self._held and (settled or self._due("done", DONE_CHECK_SECONDS, now)):
            self._check_done()  # at once when the last held entry was just settled
        return busy

    def _settle(self) -> bool:
        outbox = self._outbox
        while outbox:
            self._settling.append(outbox.popleft())
        with self.lock:
            if self._found:
                self._adding += self._found
                self._found = []
        if self._adding:
            for start in range(0, len(self._adding), 1000):
                argv = enqueue_args(self.keys, self.leases.partitions, self._adding[start : start + 1000])
                self._enqueue_script(args=argv)
            self._adding = []
        if not self._settling:
            return False
        k = self.keys
        for start in range(0, len(self._settling), 500):
            batch = self._settling[start : start + 500]
            args: list[Any] = [GROUP, k.out, k.done, k.failed, k.results, k.latest, k.retry, k.dead]
            for item in batch:
                args += item[:6]
            self._settle_script(args)
        for _kind, stream, entry_id, *_rest, partition in self._settling:
            if self._held.pop((stream, entry_id), None) is not None:
                self._held_per[partition] -= 1
        self.settled += len(self._settling)
        self._settling = []
        return True

    def _hold(self, entries: list[Entry]) -> None:
        if not entries:
            return
        for entry in entries:
            self._held[(entry.stream, entry.id)] = entry.partition
            self._held_per[entry.partition] = self._held_per.get(entry.partition, 0) + 1
        with self.lock:
            self.inbox.extend(entries)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop will wake anyway

    def _signal_done(self) -> None:
        self.done = True
        self._wake()

    def _read(self) -> bool:
        room = self.max_held - len(self._held)
        if room < self.max_held // 4:
            return False  # reads in large batches: a few entries a call cost as much as many
        cap = self.per_partition
        active = sorted(p for p in self.leases.active if self._held_per.get(p, 0) < cap)
        if not active:
            return False
        streams = {self.keys.stream(p): p for p in active}
        # Each stream at most its cap (a partition's hosts cannot use more at once),
        # all together about the room left.
        count = max(8, min(cap, room // len(active) + 1))
        names = list(streams)
        try:
            flat = self._read_script([GROUP, self._me, count, *names])
        except load_redis().ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            ensure_groups(self.client, self.keys, active)  # Redis lost its data
            return False
        got = [
            Entry(
                active[flat[i]],
                names[flat[i]],
                flat[i + 1],
                flat[i + 2].decode("utf-8", "surrogateescape"),
                int(flat[i + 3]) + 1,
                flat[i + 4].decode("utf-8", "replace"),
            )
            for i in range(0, len(flat), 5)
        ]
        self._hold(got)
        return bool(got)

    def _recover_own(self) -> None:
        """Entries delivered to us whose reply an outage lost: read our pending list again."""
        self._hold(own_pending(self.client, self.keys, self._me, sorted(self.leases.owned), self._held))

    def _heartbeat(self) -> None:
        when, count = self._rate_mark
        mono = time.monotonic()
        rate = (self.settled - count) / max(1e-3, mono - when)
        self._rate_mark = (mono, self.settled)
        info = {"held": len(self._held), "done": self.settled, "rate": rate}
        self.leases.heartbeat(info)

    def _balance(self) -> None:
        extra = self.leases.balance(self._held_per)
        if extra:
            # Entries of partitions given up that the loop has not taken go back now.
            with self.lock:
                taken = self._take_inbox()
                back = [e for e in taken if e.partition in extra]
                self.inbox.extendleft(reversed([e for e in taken if e.partition not in extra]))
            self._settling += [handback_item(e) for e in back]

    def _claim(self) -> bool:
        active = sorted(self.leases.active)
        if not active:
            return False
        got, dead = claim_idle(
            self.client, self.keys, self._me, active, self.claim_ms, self._held, self.max_deliveries
        )
        self.claimed += len(got) + len(dead)
        self._hold(got)
        if dead:
            for item in dead:
                self._held[(item[1], item[2])] = item[6]
                self._held_per[item[6]] = self._held_per.get(item[6], 0) + 1
            self._settling += dead
        return bool(got or dead)

    def _take_inbox(self) -> list[Entry]:
        """All of the inbox, popped one by one: the loop may pop at the same time (no lock)."""
        taken = []
        inbox = self.inbox
        try:
            while True:
                taken.append(inbox.popleft())
        except IndexError:
            return taken

    def _check_done(self) -> None:
        with self.lock:
            local = bool(self.inbox or self._outbox or self._found)
        if local or self._held or self._settling or self._adding:
            return
        if int(self.client.get(self.keys.out) or 0) <= 0:
            self._signal_done()

    def _finish(self) -> None:
        """The worker stops: leases released and its heartbeat removed, so others take over now."""
        self.leases.release_all()
