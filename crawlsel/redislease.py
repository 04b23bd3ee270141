"""Which partitions (and so which hosts) one worker holds: leases, heartbeats, its share.

Politeness across workers rests here: a partition's stream is read only by the
worker holding its lease (``SET NX PX``), so every host of it is fetched by one
worker at a time and ``--per-host``, delays and pauses mean what they mean for one
process.  Each worker heartbeats in ``{p}:workers``; its share is
``ceil(S / live workers)``.  Over its share, it *drains* partitions -- reads none,
and releases each once it holds none of its entries -- so a host changes workers
only when the old one has nothing of it in flight.  A lease lapses ``--lease``
seconds after its holder stopped renewing (killed); another worker takes it then.

Called only from the feeder thread (blocking calls).
"""

from __future__ import annotations

import math
import time
from typing import Any

from crawlsel.redisjob import RELEASE, RENEW, Keys, ensure_groups, stable_hash


class Leases:
    def __init__(self, client: Any, keys: Keys, name: str, lease: float) -> None:
        self.client = client
        self.keys = keys
        self.name = name
        self._me = name.encode()
        self.lease_ms = int(lease * 1000)
        self.partitions = 0
        self.owned: set[int] = set()
        self.draining: set[int] = set()
        self.active: set[int] = set()  # owned and not draining: read from
        self.gained = False  # partitions taken at the last balance
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    def _changed(self) -> None:
        self.active = self.owned - self.draining

    def heartbeat(self, info: dict[str, float]) -> None:
        """Say we live (with our counts, for ``status``) and renew every lease we hold."""
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.keys.workers, {self._me: now_ms})
        pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms - 10 * self.lease_ms)
        pipe.hset(self.keys.worker(self.name), mapping={**info, "partitions": len(self.owned)})
        pipe.pexpire(self.keys.worker(self.name), 3 * self.lease_ms)
        owned = sorted(self.owned)
        for p in owned:
            self._renew(args=[self.keys.lease(p), self._me, self.lease_ms], client=pipe)
        replies = pipe.execute()
        for p, kept in zip(owned, replies[4:], strict=True):
            if not kept:  # another worker holds it now (ours lapsed during an outage)
                self.owned.discard(p)
                self.draining.discard(p)
        self._changed()

    def balance(self, held_per: dict[int, int]) -> set[int]:
        """Take partitions up to our share, drain those over it; the newly drained ones."""
        now_ms = int(time.time() * 1000)
        live = self.client.zcount(self.keys.workers, now_ms - self.lease_ms, "+inf")
        share = math.ceil(self.partitions / max(1, live))
        extra: set[int] = set()
        self.gained = False
        active = self.owned - self.draining
        if len(active) < share:
            for p in sorted(self.draining)[: share - len(active)]:
                self.draining.discard(p)  # wanted again: keep it
            self._acquire(share - len(self.owned - self.draining))
        elif len(active) > share:
            extra = set(sorted(active)[share:])
            self.draining |= extra
        for p in [p for p in self.draining if not held_per.get(p)]:
            self._release(args=[self.keys.lease(p), self._me])
            self.draining.discard(p)
            self.owned.discard(p)
        self._changed()
        return extra

    def _acquire(self, need: int) -> None:
        """Take free partitions, starting at a place of our own so workers do not collide."""
        if need <= 0 or not self.partitions:
            return
        start = stable_hash(self.name) % self.partitions
        order = [(start + i) % self.partitions for i in range(self.partitions)]
        free = [p for p in order if p not in self.owned]
        taken: list[int] = []
        while free and len(taken) < need:
            batch, free = free[: need - len(taken)], free[need - len(taken) :]
            pipe = self.client.pipeline(transaction=False)
            for p in batch:
                pipe.set(self.keys.lease(p), self._me, nx=True, px=self.lease_ms)
            taken += [p for p, ok in zip(batch, pipe.execute(), strict=True) if ok]
        if taken:
            ensure_groups(self.client, self.keys, taken)
            self.owned |= set(taken)
            self.gained = True

    def release_all(self) -> None:
        """A clean exit: others take our partitions at once instead of after the lease."""
        pipe = self.client.pipeline(transaction=False)
        for p in sorted(self.owned):
            self._release(args=[self.keys.lease(p), self._me], client=pipe)
        pipe.zrem(self.keys.workers, self._me)
        pipe.delete(self.keys.worker(self.name))
        pipe.execute()
        self.owned.clear()
        self._changed()
