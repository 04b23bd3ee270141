"""``fetch --workers N`` and ``crawl --workers N``: one run split over N processes, reported as one.

nginx's model: the parent forks N workers after the imports, each the ordinary
single-threaded selector run (crawlsel.workerchild), and keeps the run's one
frontier itself: fetch's URL lists, or the crawl's queue, seen set and robots.txt
answers (the crawl's links are scanned on the parent's side, as in one process).
Each URL goes to the worker of the file it is saved under, or of its host
(``crawlsel.workerroute``), so the case-insensitive ``.1`` suffixes, ``-c``,
``--per-host`` and dedupe come out as with one process.  URLs leave in batches
(one pickled frame per worker and slice of the frontier); records come back in
batches and end in the frontier as they would in one process; the parent's one
``RunReport`` gives the progress line, the JSON Lines, the summary and the exit
status (``clirun.summarise``).

The parent remembers which URLs each worker holds without a record: a worker
that dies (kill -9) has them end as failed records naming how it ended.  Ctrl-C
(to the group or to the parent alone) becomes one SIGTERM for each worker, which
stops as one process does (its ``.part`` files removed); the parent summarises
once the workers are done, and exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from crawlsel.clirun import say, summarise, usage_failed
from crawlsel.errors import SourceError
from crawlsel.frontier import Frontier, ListFrontier
from crawlsel.job import invalid_result
from crawlsel.loop import EVENT_READ, EVENT_WRITE, EventLoop, OnReadable
from crawlsel.models import Config, FetchResult, InvalidLine, Target
from crawlsel.pacing import SharedPauses
from crawlsel.report import RunReport
from crawlsel.run import TICK_SECONDS, open_output
from crawlsel.sources import read_targets
from crawlsel.workerpipe import READ_BYTES, frame
from crawlsel.workerprocs import Child, PacingFactory, fork_workers
from crawlsel.workerroute import Origin, Router, split_by_name, worker_configs

FEED_SLICE = 1024  # URLs taken from the frontier per turn of the parent's loop
HIGH_WATER = 256 * 1024  # unsent bytes for one worker before the parent stops reading


def fetch_with_workers(
    config: Config, sources: tuple[str, ...], report: RunReport, workers: int, *, trace: bool
) -> int:
    """Run the lists over ``workers`` processes; the exit status, as ``run_and_summarise``."""
    frontier = ListFrontier(read_targets(sources), dedupe=config.dedupe)
    return run_with_workers(config, frontier, report.on_result, report, workers, trace=trace)


def run_with_workers(
    config: Config,
    frontier: Frontier,
    on_result: Callable[[FetchResult], None],
    report: RunReport,
    workers: int,
    *,
    trace: bool,
    pacing: PacingFactory | None = None,
    paced: bool = False,
    delays: Callable[[Callable[[Origin, float], None]], None] | None = None,
) -> int:
    """The frontier's work over ``workers`` processes.  A crawl gives ``pacing`` (each
    worker's, given the pauses they share), ``paced`` (every origin has a delay: split
    by host) and ``delays`` (where its robots.txt's Crawl-delays go); its records add
    work, so the workers' lists end only when the frontier is exhausted."""
    try:
        open_output(config)  # an unusable folder is one usage error, not one per worker
    except OSError as exc:
        return usage_failed(report, str(exc))
    parent = _Parent(config, report, frontier, on_result, grows=delays is not None)
    if delays is not None:
        delays(parent.crawl_delay)
    parent.spawn(workers, trace, pacing, paced)
    return parent.run()


class _Parent:
    def __init__(
        self,
        config: Config,
        report: RunReport,
        frontier: Frontier,
        on_result: Callable[[FetchResult], None],
        *,
        grows: bool,
    ) -> None:
        self.config = config
        self.report = report
        self.frontier = frontier
        self._on_result = on_result
        self._grows = grows
        # A crawl's frontier hands out no further ahead than one process's dispatcher reads.
        self._max_out = max(1024, 8 * config.concurrency) if grows else None
        self._out = 0  # URLs with a worker, no record back yet
        self.children: list[Child] = []
        self.loop = EventLoop()
        self._route = Router(1, False)
        self._input_fd: int | None = None  # the frontier waits for this (stdin, the scanner)
        self._feeding = False  # a _feed is scheduled
        self._lists_ended = False  # the workers' pipes are closed: nothing more to hand out
        self._stopping = False
        self._interrupted = False
        self._usage_error: str | None = None
        self._connections: dict[str, int] = {}
        self._previous: tuple[Any, Any] = (signal.SIG_DFL, signal.SIG_DFL)
        self._validator_changes: list[dict] = []  # --update: each worker's, for the one index

    # --- starting ------------------------------------------------------------

    def spawn(self, workers: int, trace: bool, pacing: PacingFactory | None, paced: bool) -> None:
        """Fork the workers, each with its share of ``-c`` (and ``--per-host``), before anything is read."""
        sys.stdout.flush()
        sys.stderr.flush()
        # Ctrl-C is the parent's from before the first fork: no moment when it kills the
        # parent and leaves the workers running.  A worker resets both at once.
        self._previous = (
            signal.signal(signal.SIGINT, self._interrupt),
            signal.signal(signal.SIGTERM, self._interrupt),
        )
        by_name = split_by_name(self.config, workers, paced=paced)
        self._route = Router(workers, by_name)
        settings = worker_configs(self.config, workers, by_name)
        pauses = SharedPauses() if by_name else None
        self.children = fork_workers(settings, trace, pacing, pauses, prompt=self._grows)
        if self._stopping:  # Ctrl-C while the workers were being started
            for child in self.children:
                os.kill(child.pid, signal.SIGTERM)
        if trace:
            pids = ", ".join(str(child.pid) for child in self.children)
            rule = "its file name" if by_name else "its host"
            say(f"crawlsel: {workers} worker processes (pids {pids}), each URL to the worker of {rule}")

    # --- running -------------------------------------------------------------

    def run(self) -> int:
        loop = self.loop
        for child in self.children:
            loop.register(child.result_fd, EVENT_READ, OnReadable(partial(self._receive, child)))
        loop.wake_on_signals()
        ticker: list[Any] = []
        if self.report.live:

            def refresh() -> None:
                self.report.tick(sum(child.open for child in self.children), self.frontier.total)
                ticker[0] = loop.call_later(TICK_SECONDS, refresh, background=True)

            ticker.append(loop.call_later(TICK_SECONDS, refresh, background=True))
        self._schedule_feed()
        try:
            loop.run()
        finally:
            if ticker:
                ticker[0].cancel()
            signal.signal(signal.SIGINT, self._previous[0])
            signal.signal(signal.SIGTERM, self._previous[1])
            signal.set_wakeup_fd(-1)
            loop.close()
        if self._validator_changes:
            self._save_validators()
        if self._usage_error is not None:
            return usage_failed(self.report, self._usage_error)
        return summarise(self.report, self._interrupted, self._connections or None)

    def _save_validators(self) -> None:
        """--update: the workers' news in the folder's one index, written once, as one process does."""
        from crawlsel.update import Validators

        validators = Validators.load(self.config.output_dir)
        for changes in self._validator_changes:
            validators.apply(changes)
        try:
            validators.save()
        except OSError as exc:
            say(
                f"crawlsel: warning: cannot write {validators.file}: {exc.strerror} (--update fetches those pages again)"
            )

    def _interrupt(self, signum: int, frame: object) -> None:
        # As one process: the first Ctrl-C stops cleanly, a second one ends the parent at once.
        self._interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._stop()

    def _stop(self) -> None:
        """Read no more; each worker still running stops as one process stops."""
        if self._stopping:
            return
        self._stopping = True
        if self._input_fd is not None:
            self.loop.unregister(self._input_fd)
            self._input_fd = None
        for child in self.children:
            if child.death is None and not child.ended:
                try:
                    os.kill(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    # --- URLs out ------------------------------------------------------------

    def _schedule_feed(self) -> None:
        if not self._feeding and not self._lists_ended:
            self._feeding = True
            self.loop.call_later(0.0, self._feed)  # after the next poll: records come back meanwhile

    def _feed(self) -> None:
        """Take a slice of the frontier, each URL to its worker's batch; send the batches."""
        self._feeding = False
        if self._stopping or self._lists_ended or self._input_fd is not None:
            return
        if any(len(child.out) > HIGH_WATER for child in self.children):
            return  # that worker's queue is full: read on when its pipe has taken the rest
        frontier, route, children = self.frontier, self._route, self.children
        room = FEED_SLICE if self._max_out is None else min(FEED_SLICE, self._max_out - self._out)
        taken: list = []
        if room > 0 and frontier.ready:
            try:
                taken = frontier.take(room)
            except SourceError as exc:  # a list unreadable in the middle of the run
                self._usage_error = str(exc)
                self._stop()
                return
        for work in taken:
            if not isinstance(work, Target):  # an invalid line, a record the frontier decided
                self._finish(invalid_result(work) if isinstance(work, InvalidLine) else work)
                continue
            child = children[route(work)]
            if child.death is not None:
                self._finish(self._lost(child, work))
                continue
            self._out += 1
            child.pending[work.index] = work  # a worker whose pipe broke fails it when it ends
            if child.work_fd is not None:
                child.batch.append(work)
        for child in children:
            if child.batch:
                child.out += frame(child.batch)
                child.batch = []
                self._write(child)
        self._after_feed(bool(taken) and len(taken) == room)

    def _after_feed(self, more: bool) -> None:
        """End the workers' lists, wait for the frontier's descriptor, or read on."""
        frontier = self.frontier
        if frontier.exhausted or (not self._grows and not frontier.ready and frontier.wait_fd is None):
            self._lists_ended = True  # (a list's end: the records still on their way change nothing)
            for child in self.children:
                if not child.out:
                    self._close_work(child)
            return
        fd = frontier.wait_fd
        if fd is not None and not frontier.ready:
            self._input_fd = fd  # stdin with no whole line yet, the crawl's scans not back
            self.loop.register(fd, EVENT_READ, OnReadable(self._input_ready))
        elif more or (frontier.ready and (self._max_out is None or self._out < self._max_out)):
            if not any(len(child.out) > HIGH_WATER for child in self.children):
                self._schedule_feed()

    def _input_ready(self) -> None:
        if self._input_fd is not None:
            self.loop.unregister(self._input_fd)
            self._input_fd = None
        self.frontier.input_ready()
        self._feed()

    def crawl_delay(self, origin: Origin, seconds: float) -> None:
        """A crawl's robots.txt asked for a delay: one worker paces the origin from now on."""
        child = self.children[self._route.pin(origin)]
        if child.work_fd is not None and seconds > 0:
            child.out += frame(("delay", origin, seconds))
            self._write(child)

    def _write(self, child: Child) -> None:
        """As much of the worker's frames as its pipe takes; the rest when it is writable."""
        if child.work_fd is None:
            child.out.clear()
            return
        try:
            sent = os.write(child.work_fd, child.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # it died: its result pipe's end tells the rest
            child.out.clear()
            self._close_work(child)
            return
        del child.out[:sent]
        if child.out and not child.writing:
            child.writing = True
            self.loop.register(child.work_fd, EVENT_WRITE, OnReadable(partial(self._write, child)))
        elif not child.out:
            if child.writing:
                child.writing = False
                self.loop.unregister(child.work_fd)
            if self._lists_ended:
                self._close_work(child)  # its URL list ends here
            elif not self._stopping:
                self._schedule_feed()  # room again: read on

    def _close_work(self, child: Child) -> None:
        if child.work_fd is not None:
            if child.writing:
                child.writing = False
                self.loop.unregister(child.work_fd)
            os.close(child.work_fd)
            child.work_fd = None

    # --- records back --------------------------------------------------------

    def _receive(self, child: Child) -> None:
        try:
            data = os.read(child.result_fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self._ended(child)
            return
        for message in child.reader.feed(data):
            kind, records = message[0], message[1]
            pending = child.pending
            for record in records:
                if pending.pop(record.index, None) is not None:
                    self._out -= 1
                self._finish(record)
            if kind == "r":
                child.open = message[2]
            else:  # "end": interrupted, usage error, connections by host
                child.ended = True
                child.interrupted = message[2]
                child.open = 0
                if message[3] is not None and self._usage_error is None:
                    self._usage_error = message[3]
                    self._stop()
                for host, count in message[4].items():  # hosts shared by workers: their sum
                    self._connections[host] = self._connections.get(host, 0) + count
                if message[5]:
                    self._validator_changes.append(message[5])
        if self._grows and not self._stopping:  # a crawl's frontier grew: hand out more
            self.frontier.flush()
            if self._input_fd is not None and self.frontier.ready:
                self._input_ready()
            else:
                self._schedule_feed()

    def _ended(self, child: Child) -> None:
        """The worker's pipe closed: it exited.  URLs it held without a record fail, unless
        it stopped as asked (an interrupted run reports only what ended)."""
        self.loop.unregister(child.result_fd)
        os.close(child.result_fd)
        self._close_work(child)
        _, status = os.waitpid(child.pid, 0)
        child.open = 0
        code = os.waitstatus_to_exitcode(status)
        if child.ended and code == 0:
            if not child.pending or self._stopping:
                return
            child.death = (
                f"worker process {child.pid} was stopped"
                if child.interrupted
                else f"worker process {child.pid} ended without a record for this URL"
            )
        elif code < 0:
            child.death = f"worker process {child.pid} was killed by {signal.Signals(-code).name}"
        else:
            child.death = f"worker process {child.pid} exited with status {code}"
        for target in sorted(child.pending.values(), key=lambda t: t.index):
            self._out -= 1
            self._finish(self._lost(child, target))
        child.pending.clear()
        if not child.ended:
            from crawlsel.crawlstate import remove_stale_parts  # its .part files: it cannot remove them

            remove_stale_parts(str(self.config.output_dir))

    def _lost(self, child: Child, target: Target) -> FetchResult:
        return FetchResult(
            url=target.url,
            error=f"{child.death} before this URL finished",
            error_kind="worker",
            index=target.index,
        )

    def _finish(self, record: FetchResult) -> None:
        """A URL ended: the frontier learns it, and the record it gives is reported."""
        reported = self.frontier.finished(record)
        if reported is None:
            return  # a crawl's page: reported once its links are known
        self._on_result(reported)
        if self.report.json_closed and not self._stopping:
            self._stop()  # the reader of --json went away (| head): as one process, stop
