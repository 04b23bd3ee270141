"""``crawlsel crawl``: follow links from seed pages, within a scope, obeying robots.txt.

The options of ``fetch`` apply; this module adds the crawl's own (scope, depth,
limits, robots, pacing), builds a ``CrawlFrontier`` from them and runs it
through the same ``Run`` as ``fetch``.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crawlsel.clirun import EXIT_CODES_HELP, check_lists, chosen_workers, run_and_summarise, usage_exit
from crawlsel.errors import ExitStatus
from crawlsel.options import WorkersType, build_config, common_options, run_options
from crawlsel.report import RunReport
from crawlsel.sources import argument_records, read_targets

if TYPE_CHECKING:
    from crawlsel.crawl.convert import Mirror
    from crawlsel.crawlstate import CrawlState


class DepthType(click.ParamType):
    """A link depth: a whole number, or "inf" for no limit (as wget's -l inf)."""

    name = "N|inf"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return value
        text = str(value).strip().lower()
        if text in ("inf", "infinite"):
            return float("inf")
        if not text.isdigit():
            self.fail(f"{value!r} is not a whole number or 'inf'", param, ctx)
        return int(text)


class RegexType(click.ParamType):
    """A Python regular expression, checked when given."""

    name = "REGEX"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            re.compile(str(value))
        except re.error as exc:
            self.fail(f"{value!r} is not a regular expression: {exc}", param, ctx)
        return str(value)


def scope_options(fn: Any) -> Any:
    """What a crawl follows and how politely: ``crawl``'s options, and ``enqueue --crawl``'s
    (``crawlsettings.CrawlSettings.from_options`` reads them)."""
    options = [
        click.option(
            "-l",
            "--depth",
            type=DepthType(),
            default="5",
            show_default=True,
            help="Links followed from a seed ('inf': no limit).",
        ),
        click.option("--span-hosts", is_flag=True, help="Follow links to other hosts too."),
        click.option(
            "-D",
            "--domain",
            "domains",
            multiple=True,
            help="Also follow links to this domain and its subdomains.",
        ),
        click.option("--no-parent", is_flag=True, help="Never go above the seeds' folders."),
        click.option(
            "--include",
            "includes",
            multiple=True,
            type=RegexType(),
            help="Follow only URLs matching REGEX (repeatable).",
        ),
        click.option(
            "--exclude", "excludes", multiple=True, type=RegexType(), help="Skip URLs matching REGEX."
        ),
        click.option(
            "-p",
            "--page-requisites",
            is_flag=True,
            help="Also fetch what pages need to display (images, stylesheets, scripts).",
        ),
        click.option("--ignore-robots", is_flag=True, help="Do not fetch or obey robots.txt."),
        click.option(
            "--delay",
            type=click.FloatRange(min=0),
            default=0.0,
            help="Seconds between requests to one origin (Crawl-delay, if larger, wins).",
        ),
        click.option(
            "--random-delay", is_flag=True, help="Spread --delay over 0.5-1.5 times (as wget --random-wait)."
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0, min_open=True),
            help="Requests per second per origin, at most.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("seeds", nargs=-1, metavar="[URL]...")
@click.option(
    "-i",
    "--input-file",
    "inputs",
    multiple=True,
    metavar="FILE",
    help="Read seed URLs from FILE, one per line; - is standard input (repeatable).",
)
@scope_options
@click.option("--max-pages", type=click.IntRange(min=1), help="Fetch at most N pages in all.")
@click.option("--max-per-host", type=click.IntRange(min=1), help="Fetch at most N pages per host.")
@click.option(
    "--sitemaps",
    is_flag=True,
    help="Also crawl the URLs of each host's sitemaps (robots.txt's Sitemap: lines and /sitemap.xml).",
)
@click.option(
    "--convert-links",
    is_flag=True,
    help="At the end, make links in saved pages point to the saved files (wget -k; -k is --insecure).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False),
    help="Keep the crawl's frontier in this SQLite file; the same command resumes it.",
)
@click.option(
    "--workers",
    type=WorkersType(),
    default="auto",
    show_default=True,
    help="Processes the pages are fetched in; this one keeps the frontier and scans the links (auto: 1).",
)
@run_options(per_host=4)
@common_options
def crawl(
    seeds: tuple[str, ...],
    inputs: tuple[str, ...],
    depth: float,
    span_hosts: bool,
    domains: tuple[str, ...],
    no_parent: bool,
    includes: tuple[str, ...],
    excludes: tuple[str, ...],
    max_pages: int | None,
    max_per_host: int | None,
    page_requisites: bool,
    ignore_robots: bool,
    sitemaps: bool,
    convert_links: bool,
    delay: float,
    random_delay: bool,
    rate: float | None,
    state_file: str | None,
    workers: int | str,
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
    """Fetch the seed pages, then the pages they link to, and so on, within a scope.

    Pages are saved as fetch saves them.  By default only links to the seeds'
    hosts are followed, five links deep, and each origin's robots.txt is fetched
    first and obeyed.

    \b
    Examples:
      crawlsel crawl https://docs.example.org/
      crawlsel crawl https://h/docs/ --depth inf --no-parent -o mirror
      crawlsel crawl -i seeds.txt --domain example.org --exclude '/tag/' --max-pages 10000 --json
    """
    if not seeds and not inputs:
        raise click.UsageError("give seed URLs, or -i FILE")
    check_lists(inputs)
    if ignore_robots and not quiet:
        click.echo("crawlsel: warning: --ignore-robots: robots.txt is not fetched or obeyed", err=True)
    state = _open_state(state_file, output_dir) if state_file else None
    config = build_config(
        common,
        output_dir=output_dir,
        concurrency=concurrency,
        per_host=per_host,
        keep_alive=keep_alive,
        # A page saved just before a kill -9 is not in the state file: its file says it is done.
        skip_existing=skip_existing or state is not None,
        crawl=True,
    )
    from crawlsel.crawlfrontier import CrawlFrontier  # fetch and get never load the crawl's modules
    from crawlsel.crawlqueue import LocalQueue
    from crawlsel.crawlsettings import CrawlSettings

    settings = CrawlSettings.from_options(locals())
    scope = settings.scope()
    pacing = settings.pacing()
    frontier = CrawlFrontier(
        itertools.chain(argument_records(seeds), read_targets(inputs)),
        scope,
        user_agent=config.user_agent,
        robots=settings.robots,
        requisites=settings.requisites,
        max_pages=max_pages,
        max_per_host=max_per_host,
        on_delay=pacing.crawl_delay,
        queue=LocalQueue(state),
        sitemaps=sitemaps,
    )
    report = RunReport(
        json_out=sys.stdout if json_lines else None,
        quiet=quiet,
        progress=not (no_progress or common["trace"]),
        crawl=frontier.counts,
    )
    mirror, on_result = _noting(report.on_result) if convert_links else (None, report.on_result)
    # auto is one process for a crawl: on 2 cores the scanning already has the second
    # (bench/README, crawl --workers); the crawl's size is not known before it starts.
    count = 1 if workers == "auto" else chosen_workers(int(workers), config, "select")
    try:
        if count > 1:
            from crawlsel.workers import run_with_workers

            status = run_with_workers(
                config,
                frontier,
                on_result,
                report,
                count,
                trace=common["trace"],
                pacing=settings.pacing,
                paced=settings.paced,
                delays=frontier.relay_delays,
            )
        else:
            status = run_and_summarise(
                config, frontier, on_result, report, trace=common["trace"], pacing=pacing
            )
        if mirror is not None and status != ExitStatus.INTERRUPTED:
            _convert(mirror, quiet)
    finally:
        frontier.close()
        if state is not None:
            _close_state(state)
    sys.exit(status)


def _noting(on_result: Any) -> tuple[Mirror, Any]:
    """A Mirror that notes every record of the crawl, and the callback that feeds it."""
    from crawlsel.crawl.convert import Mirror

    mirror = Mirror()

    def noted(result: Any) -> None:
        mirror.note(result.url, result.final_url, result.path, result.content_type)
        on_result(result)

    return mirror, noted


def _convert(mirror: Mirror, quiet: bool) -> None:
    def failed(path: str, why: str) -> None:
        click.echo(f"crawlsel: cannot convert the links of {path}: {why}", err=True)

    changed = mirror.convert(failed)
    if not quiet:
        click.echo(f"crawlsel: converted the links of {changed:,} files", err=True)


def _close_state(state: CrawlState) -> None:
    from crawlsel.crawlstate import StateError

    try:
        state.close()
    except StateError as exc:
        usage_exit(str(exc))


def _open_state(path: str, output_dir: Path) -> CrawlState:
    """The crawl's state file, and the output folder cleared of what a killed run left."""
    from crawlsel.crawlstate import CrawlState, StateError, remove_stale_parts

    try:
        state = CrawlState(path)
    except StateError as exc:
        usage_exit(str(exc))
    if output_dir.is_dir():
        remove_stale_parts(str(output_dir))
    return state
