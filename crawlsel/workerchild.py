"""One worker process of ``fetch --workers N``: the ordinary run over a pipe of URLs.

Forked by ``crawlsel.workers`` after the imports, a worker runs the same ``Run``
as one process does (one thread, one selector loop, its share of ``-c``) over a
``ListFrontier`` that reads its URL pipe without blocking, and sends its records
back in batches: when 128 are waiting, at each progress tick (0.1 s) and at the
end, with its open connections; in a crawl, at once while it has taken every URL
sent so far (the parent waits for those pages' links to send more).  Its last
message says how its run ended.  It prints nothing but ``--trace`` lines and
warnings: the parent reports.
"""

from __future__ import annotations

import os
import sys

from crawlsel.frontier import ListFrontier
from crawlsel.models import Config, FetchResult
from crawlsel.pacing import Pacing
from crawlsel.run import Run
from crawlsel.workerpipe import frame, targets_from_pipe, write_all

BATCH = 128  # records per message at most; the tick sends what is waiting sooner


class _Sender:
    """A worker's records on their way to the parent."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.batch: list[FetchResult] = []
        self.open = -1
        self.parent_gone = False  # its end of the pipe closed: stop, as | head does
        self.eager = False  # every URL sent so far taken: each record goes back at once

    def on_result(self, result: FetchResult) -> None:
        self.batch.append(result)
        if self.eager or len(self.batch) >= BATCH:
            self.send(self.open)

    def waiting(self, starved: bool) -> None:
        self.eager = starved
        if starved and self.batch:
            self.send(self.open)

    def tick(self, open_connections: int, total: int | None = None) -> None:
        if self.batch or open_connections != self.open:
            self.send(open_connections)

    def send(self, open_connections: int, *, end: tuple | None = None) -> None:
        self.open = open_connections
        batch, self.batch = self.batch, []
        if self.parent_gone:
            return
        try:
            write_all(self.fd, frame(("r", batch, open_connections) if end is None else ("end", batch, *end)))
        except OSError:
            self.parent_gone = True


def work(
    name: str, config: Config, pipes: tuple[int, int], trace: bool, pacing: Pacing | None, prompt: bool
) -> None:
    """Run this worker's share and leave the process (never returns).  ``pipes``: URLs in,
    records out; ``pacing``: its own, asking the pauses the workers that share its hosts
    set (``SharedPauses``); ``prompt``: a crawl's, whose parent waits for records."""
    work_fd, result_fd = pipes
    status = 0
    try:
        sender = _Sender(result_fd)

        def message(value: tuple) -> None:
            if value[0] == "delay" and pacing is not None:  # a crawl's origin pinned to this worker
                pacing.crawl_delay(value[1], value[2])

        urls = targets_from_pipe(work_fd, message, sender.waiting if prompt else None)
        frontier = ListFrontier(urls, dedupe=False)  # the parent dedupes
        run = Run(
            config,
            frontier,
            sender.on_result,
            trace=trace,
            tick=sender.tick,
            stop_when=lambda: sender.parent_gone,
            warn=lambda message: _say(f"crawlsel: warning: {name}: {message}"),
            worker=name,
            pacing=pacing,
        )
        outcome = run.execute()
        ending = (outcome.interrupted, outcome.usage_error, outcome.connections_by_host or {})
        sender.send(0, end=(*ending, outcome.validator_changes))
    except BaseException as exc:  # noqa: BLE001 - a worker never shows a traceback
        _say(f"crawlsel: error: {name}: {type(exc).__name__}: {exc}")
        status = 70  # EX_SOFTWARE: the parent fails this worker's URLs with it
    try:
        sys.stderr.flush()
    finally:
        os._exit(status)  # no teardown, no atexit of the parent's: as a one-process fetch leaves


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass
