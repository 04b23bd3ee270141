"""The dispatcher's limits and bookkeeping, driven on a real loop against real servers."""

from __future__ import annotations

import time
from pathlib import Path

from crawlsel.dispatcher import Dispatcher
from crawlsel.loop import EventLoop
from crawlsel.models import Config, FetchResult
from crawlsel.run import save_2xx
from crawlsel.sources import parse_url
from crawlsel.writer import PageWriter


def run(config: Config, urls: list[str], out: Path) -> tuple[Dispatcher, list[FetchResult]]:
    loop = EventLoop()
    results: list[FetchResult] = []
    dispatcher = Dispatcher(loop, config, save_2xx(PageWriter(out)), results.append)
    dispatcher.run(parse_url(url, index=i) for i, url in enumerate(urls))
    loop.close()
    return dispatcher, results


def test_global_and_per_host_limits_hold(make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(3)]
    urls = [s.add(f"/{i}", b"x", delay=0.01) for i in range(15) for s in servers]
    dispatcher, results = run(Config(concurrency=4, per_host=3), urls, tmp_path)
    assert len(results) == 45 and all(r.ok for r in results)
    assert dispatcher.pool.peak_open == 4
    # Each server alone never sees more than --per-host at once (its own count, so
    # a socket the client closed but the server has not yet noticed may add one).
    assert max(s.gauge.max_open for s in servers) <= 3 + 1
    assert sum(len(s.requests) for s in servers) == 45


def test_every_url_gets_exactly_one_result_in_any_mix(make_server, tmp_path: Path) -> None:
    server = make_server()
    urls = []
    for i in range(60):
        if i % 3 == 0:
            urls.append(server.add(f"/ok{i}", b"ok"))
        elif i % 3 == 1:
            urls.append(server.url(f"/missing{i}"))
        else:
            urls.append(server.add(f"/close{i}", b"c", framing="close"))
    _, results = run(Config(concurrency=5, per_host=5), urls, tmp_path)
    assert sorted(r.index for r in results) == list(range(60))
    assert sum(r.ok for r in results) == 40
    assert all(r.status == 404 for r in results if not r.ok)


def test_idle_connections_are_closed_when_the_run_ends(server, tmp_path: Path) -> None:
    urls = [server.add(f"/{i}", b"x") for i in range(10)]
    dispatcher, results = run(Config(per_host=2), urls, tmp_path)
    assert all(r.ok for r in results)
    assert dispatcher.pool.connections_opened <= 2


def test_a_long_list_is_read_in_slices_so_the_first_requests_leave_before_its_end(
    server, tmp_path: Path
) -> None:
    server.add("/page", b"x")
    seen_at: list[int] = []

    def records():
        for i in range(3000):
            if i == 600:  # inside the first read-ahead (1,024 records), past the first slice
                # Reading everything before the first poll would leave the server
                # waiting here: give its thread time to see a request, if one left.
                deadline = time.monotonic() + 2.0
                while not server.requests and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen_at.append(len(server.requests))
            yield parse_url(server.url(f"/page?n={i}"), index=i)

    loop = EventLoop()
    results: list[FetchResult] = []
    Dispatcher(loop, Config(concurrency=4, per_host=4), save_2xx(PageWriter(tmp_path)), results.append).run(
        records()
    )
    loop.close()
    assert len(results) == 3000 and all(r.ok for r in results)
    assert seen_at and seen_at[0] > 0
