"""What the commands that run a crawl share: running it, and its end as an exit status.

``run_and_summarise`` gives a frontier to a ``Run`` and turns the outcome into the
summary and the exit status; ``summarise`` is the one place that mapping is made.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

from crawlsel.errors import ExitStatus, SourceError
from crawlsel.frontier import Frontier, ListFrontier
from crawlsel.models import Config
from crawlsel.pacing import Pacing
from crawlsel.report import RunReport, printable
from crawlsel.run import Run
from crawlsel.sources import check_readable, read_targets

EXIT_CODES_HELP = """\b
Exit status:
  0    every URL was fetched with a 2xx status and saved
  1    at least one URL failed (network error, invalid URL, HTTP status >= 300)
  2    usage error or unreadable URL list
  130  interrupted (Ctrl-C)"""


def say(line: str) -> None:
    """One line on stderr, as ``click.echo(err=True)`` writes it, without loading click:
    ``crawlsel get`` in a shell loop starts without it (crawlsel.quick)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def usage_exit(message: str) -> None:
    say(f"crawlsel: error: {printable(message)}")
    sys.exit(ExitStatus.USAGE)


def run_and_summarise(
    config: Config,
    frontier: Frontier,
    on_result: Any,
    report: RunReport,
    *,
    open_sink: Any = None,
    trace: bool = False,
    engine: str = "select",
    pacing: Pacing | None = None,
) -> int:
    """Run the frontier's work through a ``Run``; the outcome becomes a summary and an exit status."""
    run = Run(
        config,
        frontier,
        on_result,
        open_sink=open_sink,
        engine=engine,
        trace=trace,
        pacing=pacing,
        tick=report.tick if report.live else None,
        stop_when=lambda: report.json_closed,
        warn=lambda message: say(f"crawlsel: warning: {message}"),
    )
    outcome = run.execute()
    if outcome.usage_error is not None:
        return usage_failed(report, outcome.usage_error)
    jar_error = None
    if config.cookies is not None and config.cookie_jar:
        try:  # after an interruption too, as curl: what was set so far is kept
            config.cookies.save(config.cookie_jar)
        except OSError as exc:
            jar_error = f"cannot write the cookie jar {config.cookie_jar}: {exc.strerror or exc}"
    status = summarise(report, outcome.interrupted, outcome.connections_by_host or None)
    if jar_error is not None:
        say(f"crawlsel: error: {printable(jar_error)}")
        return ExitStatus.FAILED if status == ExitStatus.OK else status
    return status


# --workers auto: lists smaller than this run in one process.  Forking and the pipes cost
# a few ms: a second process broke even at 500 URLs of one site (16 KB) and was 3 % faster
# at 1,000, 20 % at 2,000 (2-core VM, 2026-12-06, medians of 15 alternating runs).
AUTO_MIN_LIST_BYTES = 64 * 1024
AUTO_MAX_WORKERS = 4


def check_lists(names: tuple[str, ...]) -> None:
    """Each URL list but ``-`` readable before a run starts, or a usage error naming it."""
    for name in names:
        if name != "-":
            try:
                check_readable(name)
            except SourceError as exc:
                usage_exit(str(exc))


def readable_sources(sources: tuple[str, ...]) -> tuple[str, ...]:
    """``fetch``'s lists: urls.txt when none is named, each checked (``check_lists``)."""
    sources = sources or ("urls.txt",)
    check_lists(sources)
    return sources


def fetch_lists(
    config: Config,
    sources: tuple[str, ...],
    report: RunReport,
    *,
    trace: bool,
    engine: str,
    workers: int | str,
) -> int:
    """``fetch``'s run: in this process, or split over worker processes (crawlsel.workers)."""
    count = worker_count(workers, sources, config, engine)
    if count > 1:
        from crawlsel.workers import fetch_with_workers

        return fetch_with_workers(config, sources, report, count, trace=trace)
    frontier = ListFrontier(read_targets(sources), dedupe=config.dedupe)
    return run_and_summarise(config, frontier, report.on_result, report, trace=trace, engine=engine)


def worker_count(workers: int | str, sources: tuple[str, ...], config: Config, engine: str) -> int:
    """How many processes a fetch runs in; a usage error for what workers cannot do.

    ``auto`` is 1 (the run as it always was, nothing forked) for standard input or a
    pipe, for lists under ``AUTO_MIN_LIST_BYTES`` in all (one os.stat each: nothing
    is read), on one CPU, and for what only one process can do; else one worker per
    CPU this process may run on, at most ``AUTO_MAX_WORKERS`` and at most ``-c``.
    """
    if workers != "auto":
        return chosen_workers(int(workers), config, engine)
    if _single_process_only(config, engine):
        return 1
    size = 0
    for name in sources:
        try:
            info = os.stat(name) if name != "-" else None
        except OSError:
            return 1
        if info is None or not stat.S_ISREG(info.st_mode):
            return 1
        size += info.st_size
    if size < AUTO_MIN_LIST_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, AUTO_MAX_WORKERS, config.concurrency))


def chosen_workers(count: int, config: Config, engine: str) -> int:
    """``--workers N`` as given (at most ``-c``), or a usage error for what needs one process."""
    unsupported = _single_process_only(config, engine)
    if count > 1 and unsupported:
        usage_exit(f"--workers {count}: {unsupported} needs one process (--workers 1)")
    return max(1, min(count, config.concurrency))


def _single_process_only(config: Config, engine: str) -> str | None:
    """What a run asks for that workers cannot split, in a user's words, or None."""
    if engine != "select":
        return f"--engine {engine}"
    if config.warc:
        return "--warc (one archive file)"
    if config.cookies is not None:
        return "cookies (-b, --cookie-jar: one cookie store)"
    return None


def usage_failed(report: RunReport, message: str) -> int:
    """An unusable output folder, or a URL list unreadable in the middle of the run."""
    report.close(summary=False)
    say(f"crawlsel: error: {printable(message)}")
    return ExitStatus.USAGE


def summarise(report: RunReport, interrupted: bool, connections: dict[str, int] | None = None) -> int:
    """Print the summary; the one place a run's outcome becomes an exit status."""
    report.close(interrupted=interrupted, connections=connections)
    if interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.FAILED if report.failed or report.json_closed else ExitStatus.OK
