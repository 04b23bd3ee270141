"""A crawl on Redis: its settings and seeds stored with the job, and a worker's crawl frontier.

``enqueue --crawl`` stores the crawl's ``CrawlSettings`` (once: a second enqueue
with other settings is refused, so that no two workers apply different scopes)
and its seeds, and queues the seeds at depth 0.  A worker that finds settings in
the job runs ``CrawlFrontier`` -- the single-process crawl's discovery, scope and
robots.txt -- over a ``RedisQueue``, with the job's seeds widening its scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crawlsel.crawlfrontier import CrawlFrontier
from crawlsel.crawlsettings import CrawlSettings
from crawlsel.errors import InvalidURL
from crawlsel.models import Target
from crawlsel.pacing import Pacing
from crawlsel.redisentries import crawl_field
from crawlsel.redisfeeder import Feeder
from crawlsel.redisjob import ENQUEUE, Keys, RedisProblem, enqueue_args
from crawlsel.redisqueue import RedisQueue
from crawlsel.sources import parse_url

CRAWL_FIELD = b"crawl"


def store_crawl(client: Any, keys: Keys, settings: CrawlSettings, seeds: list[Target], url: str) -> int:
    """Store the settings (or check they are the job's) and the seeds; queue the seeds.
    How many were new to the job."""
    text = settings.to_json().encode()
    client.hsetnx(keys.meta, CRAWL_FIELD, text)
    stored = client.hget(keys.meta, CRAWL_FIELD)
    if stored != text:
        raise RedisProblem(
            f"{url}: the job crawls with other settings ({stored.decode('utf-8', 'replace')}); "
            "give the same options, or another --prefix"
        )
    if not seeds:
        return 0
    partitions = int(client.hget(keys.meta, b"partitions"))
    client.sadd(keys.seeds, *(seed.url for seed in seeds))
    pairs: list[tuple[Target, bytes | None]] = [(s, crawl_field(s.url, 0, "seed", None)) for s in seeds]
    return int(client.register_script(ENQUEUE)(args=enqueue_args(keys, partitions, pairs)))


def load_crawl(client: Any, keys: Keys) -> tuple[CrawlSettings, list[Target]] | None:
    """The job's crawl settings and seeds, or None for a list's job."""
    stored = client.hget(keys.meta, CRAWL_FIELD)
    if stored is None:
        return None
    settings = CrawlSettings.from_json(stored)
    seeds = []
    for raw in sorted(client.smembers(keys.seeds)):
        try:
            seeds.append(parse_url(raw.decode("utf-8", "surrogateescape")))
        except InvalidURL:
            continue  # (enqueue stores only URLs it parsed)
    return settings, seeds


class CrawlWorkerFrontier(CrawlFrontier):
    """The crawl's frontier over the job's shared queue; closing it hands back what it held."""

    def __init__(
        self,
        feeder: Feeder,
        settings: CrawlSettings,
        seeds: list[Target],
        *,
        user_agent: str,
        pacing: Pacing,
        max_deliveries: int,
        retry_delay: float,
    ) -> None:
        self.shared = RedisQueue(feeder, max_deliveries=max_deliveries, retry_delay=retry_delay)
        delay: Callable[[Any, float], None] = pacing.crawl_delay
        super().__init__(
            (),
            settings.scope(),
            user_agent=user_agent,
            robots=settings.robots,
            requisites=settings.requisites,
            on_delay=delay,
            queue=self.shared,
            # Pages are scanned in the loop: the dispatcher waits on one descriptor, and a
            # worker's is the feeder's pipe (a helper's would go unwatched while it waits
            # for entries).  Scale-out adds workers, one a core, rather than helpers.
            scan_helper=False,
        )
        for seed in seeds:
            self.scope.add_seed(seed)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.shared.close()
