"""A worker's entries: what one stream entry holds, and how its end is told to Redis.

Shared by the feeder thread (which reads, claims and settles entries) and the
loop's side (``RedisFrontier`` for a list, ``RedisQueue`` for a crawl), so that
both build the same ``Item`` for ``redisjob.SETTLE``.

An entry's ``u`` field is the URL; a crawl's adds how the URL was found, after
newlines (``url\\ndepth\\nvia\\nparent``), which never occur in a URL.  The raw
field travels whole wherever the entry goes back to a stream (handed back,
retried); records and the dead-letter stream name the URL alone.
"""

from __future__ import annotations

import math
import time
from json.encoder import encode_basestring  # the C escaper json uses with ensure_ascii=False
from typing import Any, NamedTuple

from crawlsel.models import FetchResult
from crawlsel.redisjob import record_bytes, retry_payload

TRANSIENT_KINDS = frozenset({"connect", "dns", "reset", "timeout"})
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Entry(NamedTuple):
    partition: int
    stream: bytes
    id: bytes
    url: str  # the raw ``u`` field: a crawl's carries its depth, via and parent
    deliveries: int  # this one included
    error: str  # the last error of an earlier delivery


# kind, stream, id, url, a, b (redisjob.SETTLE) and the partition, for the held counts.
Item = tuple[bytes, bytes, bytes, bytes, bytes, bytes, int]


def plain_url(raw: str) -> str:
    """The URL of an entry's ``u`` field (a crawl's has more after a newline)."""
    return raw.split("\n", 1)[0]


def crawl_field(url: str, depth: int, via: str, parent: str | None) -> bytes:
    """A crawl's ``u`` field: the URL and how the crawl reached it."""
    return f"{url}\n{depth}\n{via}\n{parent or ''}".encode("utf-8", "surrogateescape")


def crawl_parts(raw: str) -> tuple[str, int, str, str | None]:
    """url, depth, via, parent of a ``u`` field; a plain URL is a seed of depth 0."""
    parts = raw.split("\n", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return parts[0], 0, "seed", None
    return parts[0], int(parts[1]), parts[2], parts[3] or None


def entries_from(partition: int, stream: bytes, messages: Any, held: Any, base: int = 0) -> list[Entry]:
    """Entries of an XREADGROUP or XCLAIM reply, those in ``held`` (ours already) left out."""
    entries = []
    for entry_id, fields in messages:
        if not fields or (stream, entry_id) in held:
            continue  # deleted meanwhile (another worker ended it), or ours already
        n = int(fields.get(b"n", b"0"))
        entries.append(
            Entry(
                partition,
                stream,
                entry_id,
                fields[b"u"].decode("utf-8", "surrogateescape"),
                n + 1 + base,
                fields.get(b"e", b"").decode("utf-8", "replace"),
            )
        )
    return entries


def handback_item(e: Entry) -> Item:
    """A settle item putting an entry back in its stream, the delivery not counted."""
    raw = e.url.encode("utf-8", "surrogateescape")
    return (b"q", e.stream, e.id, raw, b"%d" % (e.deliveries - 1), e.error.encode(), e.partition)


def dead_item(entry: Entry) -> Item:
    """A claimed entry delivered too often: to the dead-letter stream, with its last error."""
    url = plain_url(entry.url)
    error = entry.error or "its worker stopped before the URL ended"
    error = f"delivered {entry.deliveries - 1} times; last error: {error}"
    record = {"url": url, "error": error, "error_kind": "dead_letter", "attempts": entry.deliveries - 1}
    return (b"d", entry.stream, entry.id, url.encode(), record_bytes(record), error.encode(), entry.partition)


# The keys of ``FetchResult.as_json`` for a list's page; the fast record below writes
# exactly these, in this order.  Checked once against the model: if it changes, every
# record goes through the JSON encoder again (slower, never different).
_PLAIN_KEYS = (
    "url", "final_url", "status", "path", "bytes", "elapsed_ms",
    "attempts", "skipped", "skip_reason", "error", "error_kind",
)  # fmt: skip
_FAST_RECORD = tuple(FetchResult("http://h/").as_json()) == _PLAIN_KEYS


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def record_of(result: FetchResult) -> bytes:
    """``record_bytes(result.as_json())``, byte for byte, in a quarter of the time.

    The record was the loop's largest cost of a worker over fetch: the JSON encoder
    took ~8 us a page (30,000 pages: 0.25 s); this f-string takes ~2.  A result
    of another shape (a crawl's, a 304, a float that is not finite) takes the encoder.
    """
    status, elapsed, skipped = result.status, round(result.elapsed_ms, 3), result.skipped
    if (
        not _FAST_RECORD
        or result.via is not None
        or result.unchanged
        or type(elapsed) is not float
        or not math.isfinite(elapsed)
        or not (status is None or type(status) is int)
        or type(result.bytes) is not int
        or type(result.attempts) is not int
        or type(skipped) is not bool
    ):
        return record_bytes(result.as_json())
    return (
        f'{{"url":{_text(result.url)},"final_url":{_text(result.final_url)},'
        f'"status":{"null" if status is None else status},"path":{_text(result.path)},'
        f'"bytes":{result.bytes},"elapsed_ms":{elapsed!r},"attempts":{result.attempts},'
        f'"skipped":{"true" if skipped else "false"},"skip_reason":{_text(result.skip_reason)},'
        f'"error":{_text(result.error)},"error_kind":{_text(result.error_kind)}}}'
    ).encode()


def transient(result: FetchResult) -> bool:
    """A failure another delivery (later, maybe on another worker) may not meet."""
    if result.error is None or result.skipped:
        return False
    return result.error_kind in TRANSIENT_KINDS or result.status in TRANSIENT_STATUSES


def end_item(entry: Entry, result: FetchResult, max_deliveries: int, retry_delay: float) -> Item:
    """How an entry ends: acknowledged with its record, retried later, or dead-lettered."""
    url = plain_url(entry.url).encode("utf-8", "surrogateescape")
    if transient(result):
        error = result.error or f"HTTP {result.status}"
        if entry.deliveries < max_deliveries:
            due = time.time() + retry_delay * 2 ** (entry.deliveries - 1)
            payload = retry_payload(entry.stream, entry.deliveries, error, entry.url)
            return (b"r", entry.stream, entry.id, url, payload, b"%d" % int(due * 1000), entry.partition)
        error = f"delivered {entry.deliveries} times; last error: {error}"
        record = record_bytes({**result.as_json(), "attempts": entry.deliveries, "error": error})
        return (b"d", entry.stream, entry.id, url, record, error.encode(), entry.partition)
    kind = b"a" if result.error is None else b"f"
    return (kind, entry.stream, entry.id, url, record_of(result), b"", entry.partition)
