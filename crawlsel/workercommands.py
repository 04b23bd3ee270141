"""The scale-out commands: ``enqueue``, ``worker``, ``status``, ``results`` on a job in Redis.

Registered by ``cli.py``; redis-py is imported only when one of them runs, so
that ``crawlsel fetch`` starts as fast without it.  Every failure a user meets is
one line on stderr naming the Redis URL (``redisjob.RedisProblem``), never a
traceback; without redis-py each command says how to install it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import click

from crawlsel.clirun import EXIT_CODES_HELP, run_and_summarise, usage_exit
from crawlsel.errors import ExitStatus, SourceError
from crawlsel.models import InvalidLine, Target
from crawlsel.options import build_config, common_options, run_options
from crawlsel.report import RunReport, printable
from crawlsel.sources import check_readable, read_targets

ENQUEUE_BATCH = 1000

redis_option = click.option(
    "--redis",
    "redis_url",
    required=True,
    metavar="URL",
    envvar="CRAWLSEL_REDIS",
    help="The job's Redis, e.g. redis://127.0.0.1:6379/0 (or $CRAWLSEL_REDIS).",
)
prefix_option = click.option(
    "--prefix", default="crawlsel", show_default=True, help="Key prefix: several jobs in one Redis."
)


def _fail(message: str) -> None:
    click.echo(f"crawlsel: {printable(message)}", err=True)
    sys.exit(ExitStatus.FAILED)


def _connect(url: str) -> Any:
    from crawlsel.redisjob import RedisProblem, connect

    try:
        return connect(url)
    except RedisProblem as exc:
        _fail(str(exc))


def _guarded(url: str, work: Any) -> Any:
    """Run ``work()``; a Redis error on the way is one line, not a traceback."""
    from crawlsel.redisjob import describe, load_redis, shown_url

    redis = load_redis()
    try:
        return work()
    except redis.RedisError as exc:
        _fail(f"{shown_url(url)}: {describe(exc)}")


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("sources", nargs=-1, required=True, metavar="FILE...")
@redis_option
@prefix_option
@click.option(
    "--partitions",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Streams the job's hosts are spread over (fixed by the first enqueue).",
)
def enqueue(sources: tuple[str, ...], redis_url: str, prefix: str, partitions: int) -> None:
    """Add the URLs listed in FILE (- is standard input) to the job in Redis.

    Each URL is queued once per job, however often and by whoever it is enqueued.

    \b
    Examples:
      crawlsel enqueue --redis redis://db:6379/0 urls.txt
      crawlsel worker --redis redis://db:6379/0 -o pages     (on each machine)
    """
    from crawlsel.redisjob import ENQUEUE, Keys, enqueue_command, ensure_job, shown_url

    for name in sources:
        if name != "-":
            try:
                check_readable(name)
            except SourceError as exc:
                usage_exit(str(exc))
    client = _connect(redis_url)
    keys = Keys(prefix)
    script = client.register_script(ENQUEUE)
    count = _guarded(redis_url, lambda: ensure_job(client, keys, partitions))
    new = read = invalid = 0
    batch: list[Target] = []

    def send() -> int:
        return int(_guarded(redis_url, lambda: script(args=enqueue_command(keys, count, batch))))

    try:
        for record in read_targets(sources):
            if isinstance(record, InvalidLine):
                invalid += 1
                click.echo(f"crawlsel: {record.source}, line {record.line}: {record.reason}", err=True)
            elif isinstance(record, Target):
                read += 1
                batch.append(record)
                if len(batch) >= ENQUEUE_BATCH:
                    new += send()
                    batch = []
    except SourceError as exc:
        _fail(str(exc))
    if batch:
        new += send()
    click.echo(
        f"crawlsel: {shown_url(redis_url)}: {new:,} URLs queued, {read - new:,} seen before"
        + (f", {invalid:,} invalid lines" if invalid else ""),
        err=True,
    )
    sys.exit(ExitStatus.FAILED if invalid else ExitStatus.OK)


@click.command(epilog=EXIT_CODES_HELP)
@redis_option
@prefix_option
@click.option("--forever", is_flag=True, help="Wait for more work when the job is done.")
@click.option(
    "--claim-after",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Take over a stopped worker's entries idle this many seconds.",
)
@click.option(
    "--max-deliveries",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Deliveries of a URL before it goes to the dead-letter stream.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.3),
    default=10.0,
    show_default=True,
    help="Seconds a worker's hold on its hosts lasts unless renewed.",
)
@run_options(per_host=8)
@common_options
def worker(
    redis_url: str,
    prefix: str,
    forever: bool,
    claim_after: float,
    max_deliveries: int,
    lease: float,
    output_dir: Path,
    concurrency: int,
    per_host: int,
    keep_alive: bool,
    skip_existing: bool,
    quiet: bool,
    no_progress: bool,
    json_lines: bool,
    **common: Any,
) -> None:
    """Fetch the job's URLs from Redis with the options of fetch, until the job is done.

    Each host is fetched by one worker at a time (--per-host and the other
    limits hold across workers); a page is acknowledged only once saved.

    \b
    Examples:
      crawlsel worker --redis redis://db:6379/0 -o /data/pages
      crawlsel worker --redis redis://db:6379/0 --forever -c 128 --json | jq .path
    """
    from crawlsel.redisfeeder import Feeder
    from crawlsel.redisfrontier import RedisFrontier
    from crawlsel.redisjob import Keys, RedisProblem, load_redis

    try:
        redis = load_redis()
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
    except RedisProblem as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"{redis_url}: {exc}")
    config = build_config(
        common,
        output_dir=output_dir,
        concurrency=concurrency,
        per_host=per_host,
        keep_alive=keep_alive,
        skip_existing=skip_existing,
    )
    trace = common["trace"]
    report = RunReport(
        json_out=sys.stdout if json_lines else None, quiet=quiet, progress=not (no_progress or trace)
    )
    name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
    feeder = Feeder(
        client,
        redis_url,
        Keys(prefix),
        name,
        # As far ahead as the dispatcher reads (8 x -c, at least 1,024), and twice that:
        # every origin's queue stays fed while a batch is on its way.
        max_held=max(2048, 16 * concurrency),
        per_partition=max(64, 16 * per_host * common["pipeline"]),
        claim_after=claim_after,
        max_deliveries=max_deliveries,
        lease=lease,
        forever=forever,
        warn=lambda message: click.echo(f"crawlsel: {printable(message)}", err=True),
    )
    frontier = RedisFrontier(feeder, max_deliveries=max_deliveries, retry_delay=config.retry_delay)
    feeder.start()
    try:
        status = run_and_summarise(config, frontier, report.on_result, report, trace=trace)
    finally:
        frontier.close()
    if feeder.fatal is not None:
        _fail(feeder.fatal)
    sys.exit(status)


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
