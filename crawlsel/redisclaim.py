"""Taking entries back that a reply never reached: a dead worker's, and our own after an outage.

Called by the feeder thread (``redisfeeder.Feeder``) only.  ``claim_idle`` takes
entries of our partitions idle longer than claim-after (XPENDING + XCLAIM): a
stopped worker's, which would otherwise wait for ever; those delivered max times
go to the dead-letter stream instead.  ``own_pending`` reads our pending list again
after Redis was unreachable: a read whose reply was lost stays pending for us.
"""

from __future__ import annotations

from typing import Any

from crawlsel.redisentries import Entry, Item, dead_item, entries_from
from crawlsel.redisjob import GROUP, Keys, ensure_groups, load_redis

PENDING_BATCH = 500  # idle entries looked at per partition and turn


def own_pending(client: Any, keys: Keys, me: bytes, owned: list[int], held: Any) -> list[Entry]:
    """Our pending entries of the partitions we own, those held already left out."""
    if not owned:
        return []
    streams = {keys.stream(p): p for p in owned}
    try:
        reply = client.xreadgroup(GROUP, me, {s: b"0" for s in streams}, count=10_000)
    except load_redis().ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_groups(client, keys, streams.values())  # Redis lost its data
        return []
    got: list[Entry] = []
    for stream, messages in reply or ():
        got += entries_from(streams[stream], stream, messages, held)
    return got


def claim_idle(
    client: Any, keys: Keys, me: bytes, active: list[int], claim_ms: int, held: Any, max_deliveries: int
) -> tuple[list[Entry], list[Item]]:
    """Entries idle over ``claim_ms`` in ``active`` partitions, now ours: those to fetch,
    and the dead-letter items of those delivered ``max_deliveries`` times."""
    pipe = client.pipeline(transaction=False)
    for p in active:
        pipe.xpending_range(keys.stream(p), GROUP, "-", "+", PENDING_BATCH, idle=claim_ms)
    got: list[Entry] = []
    dead: list[Item] = []
    for p, pending in zip(active, pipe.execute(), strict=True):
        stream = keys.stream(p)
        idle = [x for x in pending if (stream, x["message_id"]) not in held]
        if not idle:
            continue
        delivered = {x["message_id"]: x["times_delivered"] for x in idle}
        claimed = client.xclaim(stream, GROUP, me, claim_ms, [x["message_id"] for x in idle])
        for entry in entries_from(p, stream, claimed, held):
            entry = entry._replace(deliveries=entry.deliveries + delivered.get(entry.id, 1))
            if entry.deliveries - 1 >= max_deliveries:
                dead.append(dead_item(entry))
            else:
                got.append(entry)
    return got, dead
