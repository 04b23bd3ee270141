"""A job shared in Redis: its keys, its Lua scripts, and the one-line words for Redis failures.

Everything the four scale-out commands (``enqueue``, ``worker``, ``status``,
``results``) agree on lives here, so that they cannot disagree about a key name:

- ``{p}:q:N`` the partition streams (``hash(host[:port]) mod S``, S in ``{p}:meta``), each
  with the consumer group ``w``; an entry is ``u`` (the URL), ``n`` (deliveries that
  ended already, by retries) and ``e`` (the last error).  Entries are deleted once
  acknowledged, so a stream's length is what is queued or in flight.
- ``{p}:lease:N`` the worker holding partition N (SET NX PX, renewed).
- ``{p}:s:<2 bytes>`` the seen set: 64-bit fingerprints split into 65,536 small
  hashes (field = the other 6 bytes), which Redis keeps listpack-encoded: about
  10-15 bytes a URL instead of scrapy-redis's ~100 for a 40-hex string in a set.
- ``{p}:meta`` field ``crawl``: a crawl's settings (``crawlsettings.CrawlSettings``
  as JSON), ``{p}:seeds`` its seed URLs; a job without them is a list's.
- ``{p}:out`` URLs enqueued and not yet ended: the job is done when it is 0.
- ``{p}:retry`` sorted set of entries waiting until due; ``{p}:dead`` the
  dead-letter stream; ``{p}:results`` every record written, ``{p}:latest`` url ->
  the latest record; ``{p}:workers`` heartbeats; ``{p}:worker:ID`` a worker's counts.

The scripts name their keys in ARGV rather than KEYS, which a Redis Cluster would
refuse (see bench/README.md).  Only this module and the worker's feeder import redis.
"""

from __future__ import annotations

import errno
import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crawlsel.models import Target, authority

GROUP = b"w"
DEFAULT_PARTITIONS = 64
INSTALL_HINT = "the Redis commands need redis-py: pip install 'crawlsel[redis]'"


class RedisProblem(Exception):
    """A failure a user reads as one line naming the Redis URL."""


def load_redis() -> Any:
    """The redis module, or a RedisProblem saying how to install it."""
    try:
        import redis
    except ImportError:
        raise RedisProblem(INSTALL_HINT) from None
    return redis


def shown_url(url: str) -> str:
    """The Redis URL as a message shows it: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def describe(exc: BaseException) -> str:
    """What went wrong, in a few words: "connection refused", not redis-py's sentence."""
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
    text = str(exc).strip().rstrip(".")
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "timeout" in lowered or "timed out" in lowered:
        return "timed out"
    if "loading" in lowered:
        return "Redis is loading its data set"
    if "closed by server" in lowered or "reset by peer" in lowered:
        return "connection closed by the server"
    return text.splitlines()[0] if text else type(exc).__name__


def connect(url: str) -> Any:
    """A client for ``url`` (raw bytes, no decoding), checked with a PING."""
    redis = load_redis()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        client.ping()
    except ValueError as exc:
        raise RedisProblem(f"{shown_url(url)}: {exc}") from None
    except redis.RedisError as exc:
        raise RedisProblem(f"{shown_url(url)}: {describe(exc)}") from None
    return client


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors after which a worker waits and tries again (Redis down, restarting, loading)."""
    redis = load_redis()
    return (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)


def stable_hash(text: str) -> int:
    """A hash every process agrees on (Python's hash() is randomised per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def partition_of(target: Target, partitions: int) -> int:
    """The stream of a URL's host: ``hash(host[:port]) mod S``, the port only when not the
    scheme's default -- crawlsel's limits are per origin, and two servers on one
    address but other ports are two hosts to be polite to."""
    return stable_hash(authority(target.scheme, target.host, target.port)) % partitions


def fingerprint(target: Target) -> bytes:
    """Eight bytes per request: a collision among 10 million URLs has odds of 1 in 370,000."""
    key = f"{target.scheme}://{target.host}:{target.port}{target.target}"
    return hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()


class Keys:
    """The key names of one job (the prefix lets one Redis hold several jobs)."""

    def __init__(self, prefix: str = "crawlsel") -> None:
        p = prefix.encode()
        self.prefix = p
        self.meta = p + b":meta"
        self.out = p + b":out"
        self.done = p + b":done"
        self.failed = p + b":failed"
        self.retry = p + b":retry"
        self.dead = p + b":dead"
        self.results = p + b":results"
        self.latest = p + b":latest"
        self.workers = p + b":workers"
        self.seen = p + b":s:"
        self.seeds = p + b":seeds"  # a crawl's seed URLs: the scope every worker applies

    def stream(self, partition: int) -> bytes:
        return self.prefix + b":q:%d" % partition

    def lease(self, partition: int) -> bytes:
        return self.prefix + b":lease:%d" % partition

    def worker(self, name: str) -> bytes:
        return self.prefix + b":worker:" + name.encode()


# ARGV: out key, group, then (bucket, field, stream, url) per URL.  HSETNX is the
# "add to seen"; only a new fingerprint is queued and counted, in the same step.
# An empty stream only marks the URL seen (a crawl's robots.txt, fetched by each worker).
ENQUEUE = """
local new = 0
for i = 3, #ARGV, 4 do
  if redis.call('HSETNX', ARGV[i], ARGV[i + 1], '') == 1 and ARGV[i + 2] ~= '' then
    redis.call('XADD', ARGV[i + 2], '*', 'u', ARGV[i + 3], 'n', '0')
    new = new + 1
  end
end
if new > 0 then redis.call('INCRBY', ARGV[1], new) end
return new
"""

# ARGV: group, out, done, failed, results, latest, retry, dead, then 6 per item:
# kind, stream, id, url, a (record or retry payload), b (score, or dead-letter fields).
# kind: 'a' ended (record), 'f' ended failed, 'r' retry later, 'd' dead letter,
# 'q' handed back (a worker stopping).  An entry another worker ended already
# (XACK gives 0) changes no count: the counts stay exact under claims.
SETTLE = """
local g, out, done, failed, results, latest, retry, dead =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
for i = 9, #ARGV, 6 do
  local kind, stream, id, url, a, b =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local acked = redis.call('XACK', stream, g, id)
  redis.call('XDEL', stream, id)
  if kind == 'a' or kind == 'f' or kind == 'd' then
    redis.call('HSET', latest, url, a)
    redis.call('XADD', results, '*', 'r', a)
    if acked == 1 then
      redis.call('DECR', out)
      redis.call('INCR', (kind == 'a') and done or failed)
    end
    if kind == 'd' and acked == 1 then
      redis.call('XADD', dead, '*', 'u', url, 'e', b, 'r', a)
    end
  elseif acked == 1 and kind == 'r' then
    redis.call('ZADD', retry, b, a)
  elseif acked == 1 and kind == 'q' then
    redis.call('XADD', stream, '*', 'u', url, 'n', a, 'e', b)
  end
end
return 1
"""

# ARGV: retry key, now (ms), limit.  Payloads are "stream\\nn\\nerror\\nurl".
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, payload in ipairs(due) do
  local s1 = string.find(payload, '\\n', 1, true)
  local s2 = string.find(payload, '\\n', s1 + 1, true)
  local s3 = string.find(payload, '\\n', s2 + 1, true)
  redis.call('XADD', string.sub(payload, 1, s1 - 1), '*',
    'u', string.sub(payload, s3 + 1), 'n', string.sub(payload, s1 + 1, s2 - 1),
    'e', string.sub(payload, s2 + 1, s3 - 1))
  redis.call('ZREM', ARGV[1], payload)
end
return #due
"""

# ARGV: group, consumer, count, then the streams.  XREADGROUP on each, the entries
# interleaved across streams (the dispatcher reads a slice at a time: one host's
# slice would idle the others' connections) and flat: stream's position, id, url,
# n, error, ...  redis-py's reply parsing (a dict per entry) cost more than the call.
READ = """
local lists, longest = {}, 0
for i = 4, #ARGV do
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', ARGV[i], '>')
  local entries = reply and reply[1][2] or {}
  lists[i - 3] = entries
  if #entries > longest then longest = #entries end
end
local out = {}
for k = 1, longest do
  for s, entries in ipairs(lists) do
    local entry = entries[k]
    if entry then
      local fields, url, n, err = entry[2], '', '0', ''
      for f = 1, #fields, 2 do
        local name = fields[f]
        if name == 'u' then url = fields[f + 1] elseif name == 'n' then n = fields[f + 1]
        elseif name == 'e' then err = fields[f + 1] end
      end
      out[#out + 1] = s - 1
      out[#out + 1] = entry[1]
      out[#out + 1] = url
      out[#out + 1] = n
      out[#out + 1] = err
    end
  end
end
return out
"""

# ARGV: lease key, me, ms.  Renew ours; take it back if it lapsed (Redis restarted).
RENEW = """
local holder = redis.call('GET', ARGV[1])
if holder == ARGV[2] then return redis.call('PEXPIRE', ARGV[1], ARGV[3]) end
if not holder then return redis.call('SET', ARGV[1], ARGV[2], 'NX', 'PX', ARGV[3]) and 1 or 0 end
return 0
"""

RELEASE = """
if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end
return 0
"""


def retry_payload(stream: bytes, deliveries: int, error: str, url: str) -> bytes:
    """A retry's member in the sorted set; the newline separators never occur in a URL
    (a list line with a control character is refused) and are replaced in the error."""
    error = error.replace("\n", " ")
    return b"%s\n%d\n%s\n%s" % (stream, deliveries, error.encode(), url.encode())


# One encoder for every record: json.dumps with options builds a JSONEncoder per call
# (5 us of the ~18 a record cost, measured over 30,000 pages).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def record_bytes(record: dict[str, object]) -> bytes:
    return _encode(record).encode()


def ensure_job(client: Any, keys: Keys, partitions: int = DEFAULT_PARTITIONS) -> int:
    """Create the job's partition streams and groups if new; the partition count in force."""
    client.hsetnx(keys.meta, b"partitions", partitions)
    count = int(client.hget(keys.meta, b"partitions") or partitions)
    ensure_groups(client, keys, range(count))
    return count


def ensure_groups(client: Any, keys: Keys, partitions: Any) -> None:
    redis = load_redis()
    pipe = client.pipeline(transaction=False)
    for partition in partitions:
        pipe.xgroup_create(keys.stream(partition), GROUP, id=b"0", mkstream=True)
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, redis.ResponseError) and "BUSYGROUP" not in str(reply):
            raise reply


def enqueue_command(keys: Keys, partitions: int, targets: list[Target]) -> list[bytes]:
    """ENQUEUE's arguments for a batch of targets (deduplicated by the script)."""
    return enqueue_args(keys, partitions, [(t, t.url.encode("utf-8", "surrogateescape")) for t in targets])


def enqueue_args(keys: Keys, partitions: int, pairs: list[tuple[Target, bytes | None]]) -> list[bytes]:
    """ENQUEUE's arguments for (target, entry field) pairs; a field of None only marks it seen."""
    argv = [keys.out, GROUP]
    for target, field in pairs:
        fp = fingerprint(target)
        stream = b"" if field is None else keys.stream(partition_of(target, partitions))
        argv += [keys.seen + fp[:2], fp[2:], stream, field or b""]
    return argv
