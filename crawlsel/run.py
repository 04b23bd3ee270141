"""``Run``: one run from a ``Config`` and a ``Frontier`` to a ``RunOutcome``.

Every way of starting a run (``fetch``, ``get``; crawl mode and workers next)
goes through here: it fits the open-file limit to ``--concurrency``, creates the
output folder and the page writer (``save_2xx``: only a 2xx response is saved),
builds the event loop and the dispatcher (or another engine), turns the first
Ctrl-C or SIGTERM into a clean stop, runs, and says how the run ended.  It prints nothing: the caller maps the outcome to a
summary and an exit status.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from crawlsel.dispatcher import Dispatcher
from crawlsel.errors import SourceError
from crawlsel.frontier import Frontier, blocking_records
from crawlsel.job import SinkFactory, SkipCheck
from crawlsel.loop import EventLoop
from crawlsel.models import Config, FetchResult, Target

if TYPE_CHECKING:
    from crawlsel.archive import Archive
    from crawlsel.http11 import ResponseHead
    from crawlsel.pacing import Pacing
    from crawlsel.writer import PageFile, PageWriter

ResultCallback = Callable[[FetchResult], None]
TICK_SECONDS = 0.1  # progress refresh


class RunOutcome(NamedTuple):
    """How a run ended; the caller makes the summary and the exit status of it.

    (A NamedTuple, as the other records: a frozen dataclass costs 1.2 ms of start-up.)
    """

    interrupted: bool = False
    usage_error: str | None = None  # an unusable output folder, or a list unreadable mid-run
    connections_by_host: dict[str, int] | None = None  # select engine only
    validator_changes: dict | None = None  # --update in a worker: for its parent's one index


class Run:
    """One run.  Without ``open_sink``, pages are saved under ``config.output_dir``."""

    def __init__(
        self,
        config: Config,
        frontier: Frontier,
        on_result: ResultCallback,
        *,
        open_sink: SinkFactory | None = None,
        engine: str = "select",
        trace: bool = False,
        tick: Callable[[int, int | None], None] | None = None,
        stop_when: Callable[[], bool] | None = None,
        warn: Callable[[str], None] | None = None,
        pacing: Pacing | None = None,
        worker: str | None = None,
    ) -> None:
        self.config = config
        self.frontier = frontier
        self._on_result = on_result
        self._open_sink = open_sink
        self._engine = engine
        self._trace = trace
        self._tick = tick  # called with (open connections, total) while the run goes on
        self._stop_when = stop_when  # checked after each result: the reader went away
        self._warn = warn or (lambda message: None)
        self._interrupted = False
        self._pacing = pacing  # politeness shared with a crawl frontier (Crawl-delay)
        # A worker process of fetch --workers N (its name, for --trace): its parent
        # turns Ctrl-C into one SIGTERM for it, and decides when to give up waiting.
        self._worker = worker

    def execute(self) -> RunOutcome:
        config = self.config = fit_open_files(self.config, self._warn)
        on_result = self._on_result
        skip: SkipCheck | None = None
        open_sink = self._open_sink
        if open_sink is None:
            try:
                writer = open_output(config)
            except OSError as exc:
                return RunOutcome(usage_error=str(exc))
            open_sink = save_2xx(writer)
            skip = writer.existing if config.skip_existing else writer.prepare
            user_callback = on_result

            def on_result(result: FetchResult) -> None:
                writer.forget(result.url)  # a URL that failed before saving leaves no name behind
                user_callback(result)

        try:
            if self._engine != "select":
                return self._run_other_engine(open_sink, on_result, skip)
            return self._run_select(open_sink, on_result, skip)
        except SourceError as exc:
            return RunOutcome(interrupted=self._interrupted, usage_error=str(exc))

    def _run_select(
        self, open_sink: SinkFactory, on_result: ResultCallback, skip: SkipCheck | None
    ) -> RunOutcome:
        from crawlsel.report import TraceWriter

        archive = None
        if self.config.warc:
            from crawlsel.archive import Archive, ArchiveError

            try:
                archive = Archive(self.config.warc, " ".join(sys.argv))
            except ArchiveError as exc:
                return RunOutcome(usage_error=str(exc))
        loop = EventLoop()
        stop_when = self._stop_when

        def result_then_check(result: FetchResult) -> None:
            on_result(result)
            if stop_when is not None and stop_when():
                dispatcher.stop()

        validators = None
        changes = None
        if self.config.update:
            from crawlsel.update import Validators

            validators = Validators.load(self.config.output_dir)
        dispatcher = Dispatcher(
            loop,
            self.config,
            open_sink,
            result_then_check,
            skip=skip,
            trace=TraceWriter(label=f"{self._worker} " if self._worker else "") if self._trace else None,
            pacing=self._pacing,
            validators=validators,
            archive=archive,
        )

        def interrupt(signum: int, frame: object) -> None:
            # First Ctrl-C (or SIGTERM): stop starting requests, clean up, summarise.
            # A second one gets the default action and ends the process at once
            # (in a worker, ignored: a SIGTERM sent to the group and its parent's one).
            self._interrupted = True
            after = signal.SIG_IGN if self._worker else signal.SIG_DFL
            signal.signal(signal.SIGINT, after)
            signal.signal(signal.SIGTERM, after)
            dispatcher.stop()

        ticker: list[Any] = []
        tick = self._tick
        if tick is not None:

            def refresh() -> None:
                tick(dispatcher.pool.open, dispatcher.total)
                ticker[0] = loop.call_later(TICK_SECONDS, refresh, background=True)

            ticker.append(loop.call_later(TICK_SECONDS, refresh, background=True))
        previous = _install_signals(interrupt, loop, signal.SIG_IGN if self._worker else interrupt)
        try:
            dispatcher.run(self.frontier)
        finally:
            if ticker:
                ticker[0].cancel()
            _restore_signals(previous)
            loop.close()
            if archive is not None:
                self._close_archive(archive)
            if validators is not None and self._worker:
                changes = validators.changes()  # the parent writes the one index
            elif validators is not None:
                try:
                    validators.save()
                except OSError as exc:
                    self._warn(
                        f"cannot write {validators.file}: {exc.strerror} (--update fetches those pages again)"
                    )
        return RunOutcome(
            interrupted=self._interrupted,
            connections_by_host=dispatcher.pool.connections_by_host,
            validator_changes=changes,
        )

    def _close_archive(self, archive: Archive) -> None:
        from crawlsel.archive import ArchiveError

        try:
            archive.close()
        except ArchiveError as exc:
            archive.failed = archive.failed or str(exc)
        if archive.failed is not None:
            self._warn(f"{archive.failed}; the WARC ends at the last whole record")

    def _run_other_engine(
        self, open_sink: SinkFactory, on_result: ResultCallback, skip: SkipCheck | None
    ) -> RunOutcome:
        """The blocking, threads and coroutine engines (crawlsel compare's other models)."""
        from crawlsel.engines import load

        engine = load(self._engine)

        def terminate(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, terminate)
        try:
            engine(self.config, blocking_records(self.frontier), open_sink, on_result, skip)
        except KeyboardInterrupt:
            self._interrupted = True
        finally:
            signal.signal(signal.SIGTERM, previous)
        return RunOutcome(interrupted=self._interrupted)


def save_2xx(writer: PageWriter) -> SinkFactory:
    """The sink factory of a run that saves pages: a file for a 2xx response only
    (as wget: an error page or an unfollowed redirect is not saved as the page)."""
    open_page = writer.open

    def open_sink(target: Target, head: ResponseHead) -> PageFile | None:
        return open_page(target) if 200 <= head.status < 300 else None

    return open_sink


def open_output(config: Config) -> PageWriter:
    """The page writer for ``config.output_dir``, creating the folder; OSError with a
    message naming the folder when it cannot be created or written to."""
    from crawlsel.writer import PageWriter

    folder = config.output_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"cannot write to output folder {folder}: permission denied")
    return PageWriter(folder, index_alias=config.crawl)


def fit_open_files(config: Config, warn: Callable[[str], None]) -> Config:
    """Raise the soft open-file limit to what --concurrency needs, or clamp concurrency."""
    needed = config.concurrency + 64  # stdio, selector, wake-up pair, resolver, files being written
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
        if soft < needed:
            clamped = max(1, soft - 64)
            warn(
                f"the open-file limit is {soft}; --concurrency lowered from {config.concurrency} to {clamped}"
            )
            return config._replace(concurrency=clamped, per_host=min(config.per_host, clamped))
    return config


def _install_signals(handler: Any, loop: EventLoop, on_sigint: Any) -> Any:
    try:
        previous = (signal.signal(signal.SIGINT, on_sigint), signal.signal(signal.SIGTERM, handler))
    except ValueError:  # not the main thread: leave signals alone
        return None
    loop.wake_on_signals()
    return previous


def _restore_signals(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        signal.set_wakeup_fd(-1)
