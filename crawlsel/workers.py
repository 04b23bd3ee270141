"""``fetch --workers N``: one run split over N processes, reported as one.

nginx's model: the parent forks N workers after the imports, each the ordinary
single-threaded selector run (crawlsel.workerchild), and reads the URL lists
itself.  Each URL goes to the worker of the file it is saved under, or of its
host (``crawlsel.workerroute``), so the case-insensitive ``.1`` suffixes,
``-c``, ``--per-host`` and dedupe come out as with one process.  URLs leave
in batches (one pickled frame per worker and slice of the list); records come
back in batches, and the parent's one ``RunReport`` gives the progress line, the
JSON Lines, the summary and the exit status (``clirun.summarise``).

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
from collections.abc import Iterator
from functools import partial
from typing import Any

from crawlsel.clirun import say, summarise, usage_failed
from crawlsel.errors import SourceError
from crawlsel.hashtable import HashSet64
from crawlsel.job import invalid_result
from crawlsel.loop import EVENT_READ, EVENT_WRITE, EventLoop, OnReadable
from crawlsel.models import Config, FetchResult, InvalidLine, Target, request_key
from crawlsel.pacing import SharedPauses
from crawlsel.report import RunReport
from crawlsel.run import TICK_SECONDS, open_output
from crawlsel.sources import Record, WaitForInput, read_targets
from crawlsel.workerpipe import READ_BYTES, FrameReader, frame
from crawlsel.workerroute import split_by_name, worker_by_name, worker_configs, worker_of

FEED_SLICE = 1024  # lines read from the lists per turn of the parent's loop
HIGH_WATER = 256 * 1024  # unsent bytes for one worker before the parent stops reading


class _Child:
    """The parent's view of one worker: its pipes, its unsent batch, its URLs without a record."""

    __slots__ = (
        "name",
        "pid",
        "work_fd",
        "result_fd",
        "batch",
        "out",
        "pending",
        "reader",
        "open",
        "writing",
        "ended",
        "interrupted",
        "death",
    )

    def __init__(self, name: str, pid: int, work_fd: int, result_fd: int) -> None:
        self.name = name
        self.pid = pid
        self.work_fd: int | None = work_fd  # None once closed: no more URLs
        self.result_fd = result_fd
        self.batch: list[Target] = []
        self.out = bytearray()  # frames not yet written to the pipe
        self.pending: dict[int, Target] = {}  # input index -> URL handed out, no record yet
        self.reader = FrameReader()
        self.open = 0  # its open connections, as it last said
        self.writing = False  # work_fd registered for EVENT_WRITE
        self.ended = False  # its last message arrived: its run ended as it should
        self.interrupted = False  # it said it was stopped (SIGTERM)
        self.death: str | None = None  # how it ended when it did not (kill -9)


def fetch_with_workers(
    config: Config, sources: tuple[str, ...], report: RunReport, workers: int, *, trace: bool
) -> int:
    """Run the lists over ``workers`` processes; the exit status, as ``run_and_summarise``."""
    try:
        open_output(config)  # an unusable folder is one usage error, not one per worker
    except OSError as exc:
        return usage_failed(report, str(exc))
    parent = _Parent(config, report)
    parent.spawn(workers, trace)
    return parent.run(read_targets(sources))


class _Parent:
    def __init__(self, config: Config, report: RunReport) -> None:
        self.config = config
        self.report = report
        self.children: list[_Child] = []
        self.loop = EventLoop()
        self._seen = HashSet64() if config.dedupe else None
        self._route: dict[tuple[str, str, int], _Child] = {}  # by host: each origin's worker
        self._by_name = False  # the hosts are shared: each URL to the worker of its file name
        self._source: Iterator[Record] = iter(())
        self._source_open = True
        self._input_fd: int | None = None  # stdin with no whole line yet
        self._feeding = False  # a _feed is scheduled
        self._handed = 0
        self._stopping = False
        self._interrupted = False
        self._usage_error: str | None = None
        self._connections: dict[str, int] = {}
        self._previous: tuple[Any, Any] = (signal.SIG_DFL, signal.SIG_DFL)
        self._validator_changes: list[dict] = []  # --update: each worker's, for the one index

    # --- starting ------------------------------------------------------------

    def spawn(self, workers: int, trace: bool) -> None:
        """Fork the workers, each with its share of ``-c`` (and ``--per-host``), before anything is read."""
        sys.stdout.flush()
        sys.stderr.flush()
        # Ctrl-C is the parent's from before the first fork: no moment when it kills the
        # parent and leaves the workers running.  A worker resets both at once.
        self._previous = (
            signal.signal(signal.SIGINT, self._interrupt),
            signal.signal(signal.SIGTERM, self._interrupt),
        )
        ours: list[int] = []  # the parent's pipe ends: a worker closes those of every worker
        self._by_name = split_by_name(self.config, workers)
        pauses = SharedPauses() if self._by_name else None
        for number, settings in enumerate(worker_configs(self.config, workers), 1):
            work_r, work_w = os.pipe()
            result_r, result_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                for fd in (*ours, work_w, result_r):
                    os.close(fd)
                from crawlsel.workerchild import work

                work(f"worker {number}", settings, work_r, result_w, trace, pauses)
            os.close(work_r)
            os.close(result_w)
            ours += (work_w, result_r)
            os.set_blocking(work_w, False)
            self.children.append(_Child(f"worker {number}", pid, work_w, result_r))
            if self._stopping:  # Ctrl-C while the workers were being started
                os.kill(pid, signal.SIGTERM)
        if trace:
            pids = ", ".join(str(child.pid) for child in self.children)
            rule = "its file name" if self._by_name else "its host"
            say(f"crawlsel: {workers} worker processes (pids {pids}), each URL to the worker of {rule}")

    # --- running -------------------------------------------------------------

    def run(self, records: Iterator[Record]) -> int:
        self._source = records
        loop = self.loop
        for child in self.children:
            loop.register(child.result_fd, EVENT_READ, OnReadable(partial(self._receive, child)))
        loop.wake_on_signals()
        ticker: list[Any] = []
        if self.report.live:

            def refresh() -> None:
                total = None if self._source_open else self._handed
                self.report.tick(sum(child.open for child in self.children), total)
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
        if not self._feeding:
            self._feeding = True
            self.loop.call_later(0.0, self._feed)  # after the next poll: records come back meanwhile

    def _feed(self) -> None:
        """Read a slice of the lists, each URL to its worker's batch; send the batches."""
        self._feeding = False
        if self._stopping or not self._source_open or self._input_fd is not None:
            return
        if any(len(child.out) > HIGH_WATER for child in self.children):
            return  # that worker's queue is full: read on when its pipe has taken the rest
        source, seen = self._source, self._seen
        for _ in range(FEED_SLICE):
            try:
                record = next(source)
            except StopIteration:
                self._source_open = False
                break
            except SourceError as exc:  # a list unreadable in the middle of the run
                self._usage_error = str(exc)
                self._source_open = False
                self._stop()
                break
            if isinstance(record, WaitForInput):
                self._input_fd = record.fd
                self.loop.register(record.fd, EVENT_READ, OnReadable(self._input_ready))
                break
            if isinstance(record, InvalidLine):
                self._handed += 1
                self._report(invalid_result(record))
                continue
            if seen is not None and not seen.add(request_key(record)):
                continue
            self._handed += 1
            child = self._worker_for(record)
            if child.death is not None:
                self._report(self._lost(child, record))
                continue
            child.pending[record.index] = record  # a worker whose pipe broke fails it when it ends
            if child.work_fd is not None:
                child.batch.append(record)
        for child in self.children:
            if child.batch:
                child.out += frame(child.batch)
                child.batch = []
            if not self._source_open and not child.out:
                self._close_work(child)
            elif child.out:
                self._write(child)
        full = any(len(child.out) > HIGH_WATER for child in self.children)
        if self._source_open and self._input_fd is None and not full and not self._stopping:
            self._schedule_feed()

    def _worker_for(self, target: Target) -> _Child:
        if self._by_name:
            return self.children[worker_by_name(target, len(self.children))]
        child = self._route.get(target.origin)
        if child is None:
            child = self._route[target.origin] = self.children[worker_of(target, len(self.children))]
        return child

    def _input_ready(self) -> None:
        if self._input_fd is not None:
            self.loop.unregister(self._input_fd)
            self._input_fd = None
        self._feed()

    def _write(self, child: _Child) -> None:
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
            if not self._source_open:
                self._close_work(child)  # its URL list ends here
            elif not self._stopping:
                self._schedule_feed()  # room again: read on

    def _close_work(self, child: _Child) -> None:
        if child.work_fd is not None:
            if child.writing:
                child.writing = False
                self.loop.unregister(child.work_fd)
            os.close(child.work_fd)
            child.work_fd = None

    # --- records back --------------------------------------------------------

    def _receive(self, child: _Child) -> None:
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
                pending.pop(record.index, None)
                self._report(record)
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

    def _ended(self, child: _Child) -> None:
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
            self._report(self._lost(child, target))
        child.pending.clear()
        if not child.ended:
            from crawlsel.crawlstate import remove_stale_parts  # its .part files: it cannot remove them

            remove_stale_parts(str(self.config.output_dir))

    def _lost(self, child: _Child, target: Target) -> FetchResult:
        return FetchResult(
            url=target.url,
            error=f"{child.death} before this URL finished",
            error_kind="worker",
            index=target.index,
        )

    def _report(self, record: FetchResult) -> None:
        self.report.on_result(record)
        if self.report.json_closed and not self._stopping:
            self._stop()  # the reader of --json went away (| head): as one process, stop
