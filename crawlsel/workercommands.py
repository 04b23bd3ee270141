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
from typing import TYPE_CHECKING, Any

import click

from crawlsel.clirun import EXIT_CODES_HELP, check_lists, run_and_summarise, usage_exit
from crawlsel.crawlcommand import scope_options
from crawlsel.errors import ExitStatus, SourceError
from crawlsel.models import InvalidLine, Target
from crawlsel.options import build_config, common_options, run_options
from crawlsel.report import RunReport, printable
from crawlsel.sources import argument_records, read_targets

if TYPE_CHECKING:
    from crawlsel.rediscrawl import CrawlWorkerFrontier
    from crawlsel.redisfrontier import RedisFrontier

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
@click.argument("sources", nargs=-1, required=True, metavar="FILE...|--crawl URL...")
@redis_option
@prefix_option
@click.option(
    "--partitions",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Streams the job's hosts are spread over (fixed by the first enqueue).",
)
@click.option(
    "--crawl",
    "crawl_mode",
    is_flag=True,
    help="The arguments are seed URLs of a crawl: workers follow their links (options of crawl).",
)
@scope_options
def enqueue(
    sources: tuple[str, ...], redis_url: str, prefix: str, partitions: int, crawl_mode: bool, **scope: Any
) -> None:
    """Add the URLs listed in FILE (- is standard input) to the job in Redis, or with
    --crawl the seeds of a crawl, whose settings every worker then applies.

    Each URL is queued once per job, however often and by whoever it is enqueued.

    \b
    Examples:
      crawlsel enqueue --redis redis://db:6379/0 urls.txt
      crawlsel enqueue --redis redis://db:6379/0 --crawl https://h/docs/ --depth 3 --no-parent
      crawlsel worker --redis redis://db:6379/0 -o pages     (on each machine)
    """
    from crawlsel.redisjob import ENQUEUE, Keys, enqueue_command, ensure_job, shown_url

    if crawl_mode:
        _enqueue_crawl(sources, redis_url, prefix, partitions, scope)
    check_lists(sources)
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


def _enqueue_crawl(
    seeds: tuple[str, ...], redis_url: str, prefix: str, partitions: int, scope: dict[str, Any]
) -> None:
    from crawlsel.crawlsettings import CrawlSettings
    from crawlsel.rediscrawl import store_crawl
    from crawlsel.redisjob import Keys, RedisProblem, ensure_job, shown_url

    targets: list[Target] = []
    for record in argument_records(seeds):
        if isinstance(record, InvalidLine):
            usage_exit(f"{record.text}: {record.reason}")
        else:
            targets.append(record)
    client = _connect(redis_url)
    keys = Keys(prefix)
    _guarded(redis_url, lambda: ensure_job(client, keys, partitions))
    settings = CrawlSettings.from_options(scope)
    try:
        new = _guarded(redis_url, lambda: store_crawl(client, keys, settings, targets, shown_url(redis_url)))
    except RedisProblem as exc:
        _fail(str(exc))
    click.echo(
        f"crawlsel: {shown_url(redis_url)}: {new:,} seeds queued, {len(targets) - new:,} seen before",
        err=True,
    )
    sys.exit(ExitStatus.OK)


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
    from crawlsel.redisfrontier import RedisFrontier  # noqa: F811 (imported late: no redis at start)
    from crawlsel.redisjob import Keys, RedisProblem, load_redis

    try:
        redis = load_redis()
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
    except RedisProblem as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"{redis_url}: {exc}")

    def warn(message: str) -> None:
        click.echo(f"crawlsel: {printable(message)}", err=True)

    keys = Keys(prefix)
    crawl = _crawl_of(client, redis_url, keys, warn)
    config = build_config(
        common,
        output_dir=output_dir,
        concurrency=concurrency,
        per_host=per_host,
        keep_alive=keep_alive,
        skip_existing=skip_existing,
        crawl=crawl is not None,
    )
    trace = common["trace"]
    name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
    feeder = Feeder(
        client,
        redis_url,
        keys,
        name,
        # As far ahead as the dispatcher reads (8 x -c, at least 1,024), and twice that:
        # every origin's queue stays fed while a batch is on its way.
        max_held=max(2048, 16 * concurrency),
        per_partition=max(64, 16 * per_host * common["pipeline"]),
        claim_after=claim_after,
        max_deliveries=max_deliveries,
        lease=lease,
        forever=forever,
        warn=warn,
    )
    frontier: RedisFrontier | CrawlWorkerFrontier
    pacing = None
    if crawl is None:
        frontier = RedisFrontier(feeder, max_deliveries=max_deliveries, retry_delay=config.retry_delay)
    else:
        from crawlsel.rediscrawl import CrawlWorkerFrontier

        settings, seeds = crawl
        pacing = settings.pacing()
        frontier = CrawlWorkerFrontier(
            feeder,
            settings,
            seeds,
            user_agent=config.user_agent,
            pacing=pacing,
            max_deliveries=max_deliveries,
            retry_delay=config.retry_delay,
        )
    report = RunReport(
        json_out=sys.stdout if json_lines else None,
        quiet=quiet,
        progress=not (no_progress or trace),
        crawl=None if crawl is None else frontier.counts,  # type: ignore[union-attr]
    )
    feeder.start()
    try:
        status = run_and_summarise(config, frontier, report.on_result, report, trace=trace, pacing=pacing)
    finally:
        frontier.close()
    if feeder.claimed and output_dir.is_dir():
        # A worker killed while saving left its temporary file (never renamed into place):
        # the one that took its entries removes what processes gone for good left.
        from crawlsel.crawlstate import remove_stale_parts

        remove_stale_parts(str(output_dir))
    if feeder.fatal is not None:
        _fail(feeder.fatal)
    sys.exit(status)


def _crawl_of(client: Any, url: str, keys: Any, warn: Any) -> Any:
    """The job's crawl settings and seeds (None: a list's job), waiting for Redis if it is down."""
    from crawlsel.rediscrawl import load_crawl
    from crawlsel.redisjob import describe, load_redis, shown_url, transient_errors

    transient, fatal = transient_errors(), load_redis().RedisError
    delay, said = 0.5, ""
    while True:
        try:
            crawl = load_crawl(client, keys)
            if said:
                warn(f"{shown_url(url)}: connected again")
            return crawl
        except transient as exc:
            message = f"{shown_url(url)}: {describe(exc)}; retrying in {delay:g} s"
            if message != said:
                warn(message)
                said = message
        except fatal as exc:
            _fail(f"{shown_url(url)}: {describe(exc)}")
        except ValueError as exc:
            _fail(f"{shown_url(url)}: {exc}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
