"""The ``threads`` engine: ``--concurrency`` threads, each running the blocking fetcher.

What the tutorial measured multiplexing against: every thread blocks in its own
``recv``, the kernel switches between them, and shared state needs a lock (here
only the result callback).  Each thread keeps its own keep-alive connections.
URLs are handed out as threads free up, so the list is still read lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from crawlsel.engines.blocking import BlockingIO, jobs
from crawlsel.engines.procedure import fetch
from crawlsel.job import Job, JobContext, Sink, SinkFactory, SkipCheck
from crawlsel.models import Config, FetchResult, Target

if TYPE_CHECKING:
    from crawlsel.engines import Record, ResultCallback
    from crawlsel.http11 import ResponseHead


def run(
    config: Config,
    records: Iterable[Record],
    open_sink: SinkFactory,
    on_result: ResultCallback,
    skip: SkipCheck | None = None,
) -> None:
    lock = threading.Lock()  # the writer's name claims and the reporter are not thread-safe

    def locked_skip(target: Target) -> str | None:
        assert skip is not None
        with lock:
            return skip(target)

    context = JobContext(config, open_sink, locked_skip if skip is not None else None)
    slots = threading.BoundedSemaphore(config.concurrency)
    local = threading.local()
    every_io: list[BlockingIO] = []

    def report(result: FetchResult) -> None:
        with lock:
            on_result(result)

    def locked_sink(target: Target, head: ResponseHead) -> Sink | None:
        with lock:
            return open_sink(target, head)

    context.open_sink = locked_sink

    def work(job: Job) -> None:
        try:
            io = getattr(local, "io", None)
            if io is None:
                io = local.io = BlockingIO(config)
                with lock:
                    every_io.append(io)
            report(io.run(fetch(job, context)))
        finally:
            slots.release()

    with ThreadPoolExecutor(config.concurrency, thread_name_prefix="crawlsel-fetch") as pool:
        try:
            for job in jobs(records, context, report):
                slots.acquire()  # hand out a URL only when a thread is free: lazy reading
                pool.submit(work, job)
        finally:
            pool.shutdown(wait=True)
            for io in every_io:
                io.close()
