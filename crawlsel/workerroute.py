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
  number of workers and could not be split without going over it, or when every
  origin is paced (a crawl's ``--delay``, ``--rate``): one worker then owns every
  connection to a host, and its pacing holds for the host as in one process.

A crawl's origin whose robots.txt asks for a Crawl-delay is *pinned* once the
answer is in (before any other request to it): from then on all its URLs go to
the worker that fetched its robots.txt, which paces it.
"""

from __future__ import annotations

import zlib

from crawlsel.models import Config, Target, authority
from crawlsel.sources import parse_url
from crawlsel.writer import page_path

Origin = tuple[str, str, int]


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


def split_by_name(config: Config, workers: int, *, paced: bool = False) -> bool:
    """Whether the run's hosts are shared by the workers (see the module's docstring)."""
    return config.per_host >= workers and not paced


def worker_configs(config: Config, workers: int, by_name: bool) -> list[Config]:
    """Each worker's settings: its share of ``-c`` and, when hosts are shared, of ``--per-host``."""
    per_host = shares(config.per_host, workers) if by_name else [config.per_host] * workers
    return [
        config._replace(concurrency=c, per_host=p)
        for c, p in zip(shares(config.concurrency, workers), per_host, strict=True)
    ]


class Router:
    """The worker of each URL of one run: by file name or by host, and pinned origins."""

    __slots__ = ("workers", "by_name", "_origins")

    def __init__(self, workers: int, by_name: bool) -> None:
        self.workers = workers
        self.by_name = by_name
        self._origins: dict[Origin, int] = {}  # by host: each origin's worker; by name: the pinned

    def __call__(self, target: Target) -> int:
        worker = self._origins.get(target.origin)
        if worker is not None:
            return worker
        if self.by_name:
            return worker_by_name(target, self.workers)
        worker = self._origins[target.origin] = worker_of(target, self.workers)
        return worker

    def pin(self, origin: Origin) -> int:
        """All the origin's URLs to one worker from now on: the one its robots.txt went to."""
        worker = self._origins.get(origin)
        if worker is None:
            scheme, host, port = origin
            robots = parse_url(f"{scheme}://{authority(scheme, host, port)}/robots.txt")
            worker = self._origins[origin] = self(robots)
        return worker
