"""Which discovered URLs a crawl follows: hosts, folders, patterns, depth, traps.

``Scope.refusal`` answers with the reason a URL is left out (a short word the
summary counts) or None.  The defaults are wget -r's: the seeds' host names,
http and https alike; ``--span-hosts`` leaves them, ``--domain`` adds a domain
and its subdomains, ``--no-parent`` keeps a crawl inside its seeds' folders.
Seeds themselves are always fetched.  ``trap`` bounds crawler traps with
Heritrix's rules (TooManyPathSegments, PathologicalPath).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crawlsel.models import Target

MAX_URL_BYTES = 2000
MAX_PATH_SEGMENTS = 20
MAX_SEGMENT_REPEATS = 3  # "/a/a/a/a" is a fourth repeat: a link generator, not a site


class Scope:
    __slots__ = ("_hosts", "_folders", "_span", "_domains", "_no_parent", "_include", "_exclude", "max_depth")

    def __init__(
        self,
        *,
        span_hosts: bool = False,
        domains: Iterable[str] = (),
        no_parent: bool = False,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        max_depth: float = 5,
    ) -> None:
        self._hosts: set[str] = set()
        self._folders: dict[str, set[str]] = {}  # host -> the seeds' folders on it
        self._span = span_hosts
        self._domains = tuple(d.lower().strip(".") for d in domains)
        self._no_parent = no_parent
        self._include = tuple(re.compile(p) for p in include)
        self._exclude = tuple(re.compile(p) for p in exclude)
        self.max_depth = max_depth

    def add_seed(self, seed: Target) -> None:
        """A seed widens the scope to its host (and, with --no-parent, its folder)."""
        self._hosts.add(seed.host)
        path = seed.target.split("?", 1)[0]
        self._folders.setdefault(seed.host, set()).add(path[: path.rfind("/") + 1])

    def refusal(self, target: Target, depth: int, *, requisite: bool = False) -> str | None:
        """Why a URL found at ``depth`` stays out of the crawl, or None to fetch it.

        A page requisite may be one step deeper than --depth (wget fetches a
        page's images even at the last level); like a link, it leaves the seeds'
        hosts only with --span-hosts or for a --domain.
        """
        if depth > self.max_depth + (1 if requisite else 0):
            return "depth"
        host = target.host
        if host not in self._hosts and not self._span:
            if not any(host == d or host.endswith("." + d) for d in self._domains):
                return "host"
        if self._no_parent and host in self._folders:
            path = target.target
            if not any(path.startswith(folder) for folder in self._folders[host]):
                return "parent"
        url = target.url
        if self._include and not any(p.search(url) for p in self._include):
            return "pattern"
        if any(p.search(url) for p in self._exclude):
            return "pattern"
        return None


def trap(target: Target) -> bool:
    """A URL too long, too deep, or repeating a path segment: a crawler trap."""
    if len(target.url) > MAX_URL_BYTES:
        return True
    segments = [s for s in target.target.split("?", 1)[0].split("/") if s]
    if len(segments) > MAX_PATH_SEGMENTS:
        return True
    counts: dict[str, int] = {}
    for segment in segments:
        counts[segment] = n = counts.get(segment, 0) + 1
        if n > MAX_SEGMENT_REPEATS:
            return True
    return False
