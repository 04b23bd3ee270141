"""What the commands that run a crawl share: running it, and its end as an exit status.

``run_and_summarise`` gives a frontier to a ``Run`` and turns the outcome into the
summary and the exit status; ``summarise`` is the one place that mapping is made.
"""

from __future__ import annotations

import sys
from typing import Any

from crawlsel.errors import ExitStatus
from crawlsel.frontier import Frontier
from crawlsel.models import Config
from crawlsel.pacing import Pacing
from crawlsel.report import RunReport, printable
from crawlsel.run import Run

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
