"""The I/O models side by side: ``--engine blocking | threads | select | coroutine``.

``select`` is crawlsel's own engine (``dispatcher.py``: state objects on one
selector loop).  The other three run the same top-to-bottom procedure
(``procedure.fetch``) and differ only in how they wait for I/O:

- ``blocking``: one blocking socket at a time, the tutorial's first program done right;
- ``threads``: a pool of ``--concurrency`` threads, each running the blocking fetcher;
- ``coroutine``: generator tasks on the same ``EventLoop``, a tiny Future and Task.

All of them share sources, http11 (the sans-IO protocol), job (the policy),
writer, report and netboundary (socket set-up and the words of every network
failure), so their ``--json`` records do not depend on the engine.  Each one's
``run`` is an ``Engine``; ``load`` imports one only when it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from crawlsel.job import SinkFactory, SkipCheck
    from crawlsel.models import Config, FetchResult, InvalidLine, Target
    from crawlsel.sources import WaitForInput

    Record = Target | InvalidLine | FetchResult | WaitForInput  # what a frontier hands a blocking engine
    ResultCallback = Callable[[FetchResult], None]

ENGINES = ("blocking", "threads", "select", "coroutine")


class Engine(Protocol):
    """An engine other than select: fetch every record, each result to ``on_result``.

    ``open_sink`` says where a final response's body goes (None: nowhere);
    ``skip`` (--skip-existing, or claiming names in input order) sees each URL first.
    """

    def __call__(
        self,
        config: Config,
        records: Iterable[Record],
        open_sink: SinkFactory,
        on_result: ResultCallback,
        skip: SkipCheck | None = None,
    ) -> None: ...


def load(name: str) -> Engine:
    """The ``run`` of the engine called ``name`` (not select: that is the dispatcher)."""
    if name == "blocking":
        from crawlsel.engines.blocking import run as blocking

        return blocking
    if name == "threads":
        from crawlsel.engines.threads import run as threads

        return threads
    if name == "coroutine":
        from crawlsel.engines.coroutine import run as coroutine

        return coroutine
    raise ValueError(f"no engine called {name!r}; the engines are {', '.join(ENGINES)}")
