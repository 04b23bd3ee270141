"""``CrawlSettings``: what a crawl follows and how politely, as one value that can be stored.

``crawl`` builds its scope and pacing from its options; a crawl on Redis stores
the same value with the job (``enqueue --crawl``), as JSON, so that every worker
applies the same depth, hosts, patterns, robots.txt and delays, whoever started it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from crawlsel.crawl.scope import Scope
from crawlsel.pacing import Pacing, SharedPauses


@dataclass(frozen=True)
class CrawlSettings:
    depth: float = 5
    span_hosts: bool = False
    domains: tuple[str, ...] = ()
    no_parent: bool = False
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    requisites: bool = False
    robots: bool = True
    delay: float = 0.0
    random_delay: bool = False
    rate: float | None = None

    def scope(self) -> Scope:
        return Scope(
            span_hosts=self.span_hosts,
            domains=self.domains,
            no_parent=self.no_parent,
            include=self.includes,
            exclude=self.excludes,
            max_depth=self.depth,
        )

    def pacing(self, shared: SharedPauses | None = None) -> Pacing:
        return Pacing(delay=self.delay, rate=self.rate, random_delay=self.random_delay, shared=shared)

    @property
    def paced(self) -> bool:
        """Every origin waits between requests (``--delay``, ``--rate``): one process paces each."""
        return self.delay > 0 or self.rate is not None

    def to_json(self) -> str:
        values = asdict(self)
        if values["depth"] == float("inf"):
            values["depth"] = "inf"  # JSON has no infinity
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CrawlSettings:
        """The settings a job stored; ValueError if they are not a crawl's settings."""
        try:
            values: dict[str, Any] = json.loads(text)
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in values.items() if k in known}
            if values.get("depth") == "inf":
                values["depth"] = float("inf")
            for name in ("domains", "includes", "excludes"):
                values[name] = tuple(values.get(name, ()))
            return cls(**values)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"the job's crawl settings are not readable ({exc})") from None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> CrawlSettings:
        """The settings of the crawl options (``crawlcommand.scope_options``)."""
        return cls(
            depth=options["depth"],
            span_hosts=options["span_hosts"],
            domains=tuple(options["domains"]),
            no_parent=options["no_parent"],
            includes=tuple(options["includes"]),
            excludes=tuple(options["excludes"]),
            requisites=options["page_requisites"],
            robots=not options["ignore_robots"],
            delay=options["delay"],
            random_delay=options["random_delay"],
            rate=options["rate"],
        )
