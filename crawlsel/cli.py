"""The ``crawlsel`` command: options in, exit status out.

A thin shell over the dispatcher: it validates options (in Click types), builds a
``Config``, wires sources, writer and reporter together, and is the one place that
maps outcomes to exit codes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from crawlsel import __version__
from crawlsel.clirun import EXIT_CODES_HELP, fetch_lists, readable_sources, run_and_summarise, usage_exit
from crawlsel.engines import ENGINES
from crawlsel.errors import ExitStatus
from crawlsel.frontier import ListFrontier
from crawlsel.http11 import ResponseHead
from crawlsel.lazygroup import LazyGroup
from crawlsel.models import FetchResult, Target
from crawlsel.options import WorkersType, build_config, common_options, run_options
from crawlsel.report import RunReport, printable
from crawlsel.sources import argument_records

# The crawl's and the Redis commands are imported when named (crawlsel.lazygroup).
LAZY = {
    "crawl": "crawlsel.crawlcommand:crawl",
    "enqueue": "crawlsel.workercommands:enqueue",
    "worker": "crawlsel.workercommands:worker",
    "status": "crawlsel.jobcommands:status",
    "results": "crawlsel.jobcommands:results",
}


@click.group(
    cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP
)
@click.version_option(__version__, prog_name="crawlsel")
def main() -> None:
    """Fetch lists of web pages concurrently, on one thread, with a selector event loop.

    \b
    Examples:
      crawlsel fetch urls.txt                  save every page under crawled_page/
      crawlsel get https://example.org/ | less print one page's body

    Shell completion (bash): eval "$(_CRAWLSEL_COMPLETE=bash_source crawlsel)"
    """


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@run_options(per_host=8)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="select",
    show_default=True,
    help="How to wait for I/O (see crawlsel compare and docs/models.md).",
)
@click.option(
    "--workers",
    type=WorkersType(),
    default="auto",
    show_default=True,
    help="Processes the run is split over, by file name (auto: 1 for stdin and lists under 64 KB, "
    "else one per CPU, at most 4).",
)
@common_options
def fetch(
    sources: tuple[str, ...],
    output_dir: Path,
    concurrency: int,
    per_host: int,
    keep_alive: bool,
    skip_existing: bool,
    quiet: bool,
    no_progress: bool,
    json_lines: bool,
    engine: str,
    workers: int | str,
    **common: Any,
) -> None:
    """Fetch the URLs listed in SOURCE files and save each body under the output folder.

    SOURCE has one URL per line; blank lines and lines starting with # are skipped;
    - reads standard input as lines arrive.  Without SOURCE, urls.txt is read.
    Pages are saved as OUTPUT/HOST[_PORT]/PATH ("/" as index.html); only 2xx
    responses are saved, each under the name of the URL as listed.

    \b
    Examples:
      crawlsel fetch urls.txt -o pages
      crawlsel fetch urls.txt --skip-existing        finish an interrupted run
      tail -f new-urls | crawlsel fetch - --json | jq -r .path
    """
    sources = readable_sources(sources)
    config = build_config(
        common,
        output_dir=output_dir,
        concurrency=concurrency,
        per_host=per_host,
        keep_alive=keep_alive,
        skip_existing=skip_existing,
    )
    if (config.proxies is not None or config.cookies is not None) and engine != "select":
        # The comparison engines connect directly and send no stored cookies: never skipped silently.
        what = (
            "proxies (--proxy or the *_proxy variables)" if config.proxies else "cookies (-b, --cookie-jar)"
        )
        usage_exit(f"--engine {engine} does not support {what}")
    trace = common["trace"]
    report = RunReport(
        json_out=sys.stdout if json_lines else None, quiet=quiet, progress=not (no_progress or trace)
    )
    sys.exit(fetch_lists(config, sources, report, trace=trace, engine=engine, workers=workers))


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option(
    "--keep-alive/--no-keep-alive",
    default=False,
    show_default=True,
    help="Send all URLs of one origin over one connection.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Open connections in total.",
)
@click.option(
    "-i",
    "--include",
    is_flag=True,
    help="Print each head as received before its body, trailers after it (as curl -i).",
)
@click.option(
    "-I", "--head", "head_only", is_flag=True, help="Send HEAD and print only the status line and headers."
)
@click.option(
    "-o",
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to FILE instead of stdout.",
)
@click.option(
    "-f",
    "--fail",
    "fail_quietly",
    is_flag=True,
    help="Print nothing for a response with status >= 400 (as curl -f).",
)
@click.option("-s", "--silent", is_flag=True, help="No error messages on stderr.")
@common_options
def get(
    urls: tuple[str, ...],
    keep_alive: bool,
    concurrency: int,
    include: bool,
    head_only: bool,
    output_file: str | None,
    fail_quietly: bool,
    silent: bool,
    **common: Any,
) -> None:
    """Write the bodies of URLs to stdout, bytes exact, in the order given.

    Errors go to stderr, one line per URL.  Without --keep-alive every request is
    sent with "Connection: close" on a connection of its own; with it, all URLs of
    an origin share one connection and the command returns as soon as the last
    response is complete.

    \b
    Examples:
      crawlsel get https://example.org/ | grep -i title
      crawlsel get -i --keep-alive --trace http://h/a.html http://h/b.html
    """
    config = build_config(
        common,
        concurrency=concurrency,
        per_host=1 if keep_alive else concurrency,
        keep_alive=keep_alive,
        method="HEAD" if head_only else "GET",
        dedupe=False,
        raw_heads=include or head_only,
    )
    stream = open(output_file, "wb") if output_file else sys.stdout.buffer  # noqa: SIM115
    escape = not output_file and sys.stdout.isatty()
    from crawlsel.ordered_output import OrderedOutput  # get only: fetch never loads it

    output = OrderedOutput(stream)
    report = RunReport(quiet=True)

    def open_sink(target: Target, head: ResponseHead) -> Any:
        if fail_quietly and head.status >= 400:
            return None
        part = output.open(target, head)
        if include or head_only:
            part.write(_shown(head.raw, escape))
            return _WithTrailers(part, head, escape)
        return part

    def on_result(result: FetchResult) -> None:
        report.on_result(result)
        if result.error is not None and not output.closed and not silent:
            click.echo(f"crawlsel: {printable(result.url)}: {printable(result.error)}", err=True)
        output.finished(result.index)

    frontier = ListFrontier(argument_records(urls), dedupe=config.dedupe)
    status = run_and_summarise(
        config, frontier, on_result, report, open_sink=open_sink, trace=common["trace"]
    )
    if output_file:
        stream.close()
    if output.closed:
        # The reader went away (| head): as cat, stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(status)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--engines", default=",".join(ENGINES), show_default=True, help="Comma-separated engines to run."
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Connections (threads for the threads engine).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Interleaved rounds; the table shows medians.",
)
@click.option("--json", "json_lines", is_flag=True, help="One JSON object per engine on stdout.")
def compare(source: str, engines: str, concurrency: int, repeat: int, json_lines: bool) -> None:
    """Fetch one URL list with each I/O model and compare them.

    Runs `crawlsel fetch SOURCE --engine NAME` for every engine, each into a
    temporary folder, checks that all saved the same bytes, and prints wall time,
    pages/s, CPU time, peak threads, peak RSS and the speed-up over blocking.

    \b
    Examples:
      crawlsel compare urls.txt
      crawlsel compare urls.txt --engines select,coroutine -c 200 --repeat 3
    """
    from crawlsel.compare import compare as run_comparison
    from crawlsel.compare import interpret, same_bytes
    from crawlsel.report import print_comparison

    names = [name.strip() for name in engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown engine {', '.join(unknown) or '(none)'}; choose from {', '.join(ENGINES)}",
            param_hint="--engines",
        )
    runs = run_comparison(source, names, concurrency, repeat, [])
    identical = same_bytes(runs)
    note = interpret(runs, concurrency)
    note += " All engines saved the same bytes." if identical else " The engines did NOT save the same bytes."
    if json_lines:
        import json

        for run in runs:
            click.echo(json.dumps({**run.as_json(), "same_bytes": identical}))
    print_comparison(runs, note)
    sys.exit(ExitStatus.OK if identical and not any(r.failed for r in runs) else ExitStatus.FAILED)


def _shown(raw: bytes, escape: bool) -> bytes:
    """Head bytes as received; on a terminal, control characters escaped line by line."""
    if not escape:
        return raw
    lines = raw.decode("latin-1").split("\n")
    shown = [printable(line[:-1]) + "\r" if line.endswith("\r") else printable(line) for line in lines]
    return "\n".join(shown).encode("latin-1", "replace")


class _WithTrailers:
    """An output part that ends with the trailer section, as curl -i prints it after the body."""

    def __init__(self, part: Any, head: ResponseHead, escape: bool) -> None:
        self._part = part
        self._head = head  # its raw_trailers are set when the response is complete
        self._escape = escape

    def write(self, data: bytes) -> None:
        self._part.write(data)

    def commit(self) -> str | None:
        trailers = self._head.raw_trailers
        if trailers.strip():
            self._part.write(_shown(trailers, self._escape))
        return self._part.commit()

    def discard(self) -> None:
        self._part.discard()
