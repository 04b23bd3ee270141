"""The scale-out commands that read a job in Redis: ``status`` and ``results``.

Registered by ``cli.py`` next to ``enqueue`` and ``worker`` (``workercommands``),
whose options and one-line failures they share.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from crawlsel.errors import ExitStatus
from crawlsel.workercommands import _connect, _guarded, prefix_option, redis_option


@click.command()
@redis_option
@prefix_option
def status(redis_url: str, prefix: str) -> None:
    """Show the job: queued, retrying, in flight per worker, done, failed, dead, pages/s.

    \b
    Example:
      watch -n1 crawlsel status --redis redis://db:6379/0
    """
    from crawlsel.redisjob import GROUP, Keys, shown_url

    client = _connect(redis_url)
    keys = Keys(prefix)

    def gather() -> tuple[Any, ...]:
        partitions = int(client.hget(keys.meta, b"partitions") or 0)
        pipe = client.pipeline(transaction=False)
        for p in range(partitions):
            pipe.xlen(keys.stream(p))
        for p in range(partitions):
            pipe.xpending(keys.stream(p), GROUP)
        pipe.mget([keys.out, keys.done, keys.failed])
        pipe.zcard(keys.retry)
        pipe.xlen(keys.dead)
        pipe.zrangebyscore(keys.workers, int(time.time() * 1000) - 60_000, "+inf")
        replies = pipe.execute(raise_on_error=False)
        lengths = sum(r for r in replies[:partitions] if isinstance(r, int))
        pending = sum(r["pending"] for r in replies[partitions : 2 * partitions] if isinstance(r, dict))
        counts = [int(v or 0) for v in replies[2 * partitions]]
        workers = replies[-1]
        pipe = client.pipeline(transaction=False)
        for name in workers:
            pipe.hgetall(keys.worker(name.decode()))
        return (
            lengths,
            pending,
            counts,
            replies[-3],
            replies[-2],
            list(zip(workers, pipe.execute(), strict=True)),
        )

    lengths, pending, (out, done, failed), retrying, dead, workers = _guarded(redis_url, gather)
    rate = sum(float(info.get(b"rate", 0)) for _, info in workers)
    state = "done" if out <= 0 else "running"
    click.echo(
        f"{shown_url(redis_url)}: {state}: {lengths - pending:,} queued, {retrying:,} retrying, "
        f"{pending:,} in flight, {done:,} done, {failed:,} failed, {dead:,} dead, "
        f"{len(workers)} workers, {rate:,.0f} pages/s"
    )
    for name, info in workers:
        if not info:
            continue
        click.echo(
            f"  {name.decode():<32} {int(info.get(b'partitions', 0)):>4} partitions "
            f"{int(info.get(b'held', 0)):>6} held {int(info.get(b'done', 0)):>9,} done "
            f"{float(info.get(b'rate', 0)):>8,.0f} pages/s"
        )


@click.command()
@redis_option
@prefix_option
@click.option("-f", "--follow", is_flag=True, help="Then print records as workers write them (Ctrl-C ends).")
def results(redis_url: str, prefix: str, follow: bool) -> None:
    """Print the job's JSON records, one per URL (its latest), as fetch --json prints them.

    \b
    Examples:
      crawlsel results --redis redis://db:6379/0 | jq -r 'select(.error) | .url'
      crawlsel results --redis redis://db:6379/0 --follow | jq .path
    """
    from crawlsel.redisjob import Keys

    client = _connect(redis_url)
    keys = Keys(prefix)
    out = sys.stdout

    def dump() -> bytes:
        last = client.xrevrange(keys.results, count=1)
        mark = last[0][0] if last else b"0-0"
        for _url, record in client.hscan_iter(keys.latest, count=1000):
            out.write(record.decode("utf-8", "replace") + "\n")
        out.flush()
        return mark

    def tail(mark: bytes) -> None:
        while True:
            for _stream, entries in client.xread({keys.results: mark}, count=1000, block=1000) or ():
                for entry_id, fields in entries:
                    out.write(fields[b"r"].decode("utf-8", "replace") + "\n")
                    mark = entry_id
            out.flush()

    try:
        mark = _guarded(redis_url, dump)
        if follow:
            _guarded(redis_url, lambda: tail(mark))
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KeyboardInterrupt:
        sys.exit(ExitStatus.INTERRUPTED)
