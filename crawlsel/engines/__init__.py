"""The I/O models side by side: ``--engine blocking | threads | select | coroutine``.

``select`` is crawlsel's own engine (``dispatcher.py``: state objects on one
selector loop).  The other three run the same top-to-bottom procedure
(``procedure.fetch``) and differ only in how they wait for I/O:

- ``blocking``: one blocking socket at a time, the tutorial's first program done right;
- ``threads``: a pool of ``--concurrency`` threads, each running the blocking fetcher;
- ``coroutine``: generator tasks on the same ``EventLoop``, a tiny Future and Task.

All of them share sources, http11 (the sans-IO protocol), job (the policy),
writer and report, so their ``--json`` records do not depend on the engine.
"""

from __future__ import annotations

ENGINES = ("blocking", "threads", "select", "coroutine")
