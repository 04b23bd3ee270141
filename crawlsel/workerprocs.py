"""The worker processes of ``--workers N``, as their parent sees them: forked, then watched.

Each worker is forked after the imports (no second interpreter start) with two
pipes, URLs in and records out; it resets Ctrl-C (the parent turns it into one
SIGTERM per worker), closes every other worker's pipe ends and runs
``crawlsel.workerchild.work``, which never returns.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from crawlsel.models import Config, Target
from crawlsel.pacing import Pacing, SharedPauses
from crawlsel.workerpipe import FrameReader

PacingFactory = Callable[[SharedPauses | None], Pacing | None]


class Child:
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


def fork_workers(
    settings: list[Config],
    trace: bool,
    pacing: PacingFactory | None,
    pauses: SharedPauses | None,
    *,
    prompt: bool,
) -> list[Child]:
    """One worker per ``settings`` (its share of ``-c`` and ``--per-host``); ``pacing``
    builds a worker's own pacing from the ``pauses`` they share (fetch: only those);
    ``prompt``: records go back at once while a worker has nothing queued (a crawl)."""
    children: list[Child] = []
    ours: list[int] = []  # the parent's pipe ends: a worker closes those of every worker
    for number, config in enumerate(settings, 1):
        work_r, work_w = os.pipe()
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for fd in (*ours, work_w, result_r):
                os.close(fd)
            from crawlsel.workerchild import work

            own = pacing(pauses) if pacing is not None else Pacing(shared=pauses) if pauses else None
            work(f"worker {number}", config, (work_r, result_w), trace, own, prompt)
        os.close(work_r)
        os.close(result_w)
        ours += (work_w, result_r)
        os.set_blocking(work_w, False)
        children.append(Child(f"worker {number}", pid, work_w, result_r))
    return children
