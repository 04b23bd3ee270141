"""Which worker of ``fetch --workers N`` a URL goes to, and what each worker may open.

One rule per run, chosen before the first URL is read, so that one list always
splits the same way:

- **by file name** (the usual case): ``crc32`` of the case-folded path the writer
  saves the URL under, its host folder included.  The URLs that could claim one
  file name (``/Same.html`` and ``/same.html``, ``/dir/`` and ``/dir/index.html``)
  go to one worker in input order, so the ``.1`` suffixes come out as with one
  process, and the pages of one site are shared by every worker: a list of one
  site is as fast to split as a list of many.  ``-c`` and ``--per-host`` are split
  over the workers (``shares``), so they stay totals; a 429's pause reaches every
  worker through ``pacing.SharedPauses``.
- **by host** (``crc32(host[:port])``), when ``--per-host`` is smaller than the
  number of workers and could not be split without going over it: one worker
  then owns every connection to a host.
"""

from __future__ import annotations

import zlib

from crawlsel.models import Config, Target, authority
from crawlsel.writer import page_path


def shares(total: int, workers: int) -> list[int]:
    """``total`` (``-c``, ``--per-host``) split over the workers, as evenly as it goes (each at least 1)."""
    base, extra = divmod(total, workers)
    return [max(1, base + (1 if i < extra else 0)) for i in range(workers)]


def worker_of(target: Target, workers: int) -> int:
    """The worker of a URL by host: every URL of one output folder (host[:port]) to the same one."""
    name = authority(target.scheme, target.host, target.port)
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % workers


def worker_by_name(target: Target, workers: int) -> int:
    """The worker of a URL by the file it is saved under, compared as the writer compares names."""
    name = "/".join(page_path(target)).casefold()
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % workers


def split_by_name(config: Config, workers: int) -> bool:
    """Whether the run's hosts are shared by the workers (see the module's docstring)."""
    return config.per_host >= workers


def worker_configs(config: Config, workers: int) -> list[Config]:
    """Each worker's settings: its share of ``-c`` and, when hosts are shared, of ``--per-host``."""
    per_host = (
        shares(config.per_host, workers) if split_by_name(config, workers) else [config.per_host] * workers
    )
    return [
        config._replace(concurrency=c, per_host=p)
        for c, p in zip(shares(config.concurrency, workers), per_host, strict=True)
    ]
