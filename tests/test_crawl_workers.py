"""``crawl --workers N``: the parent keeps the frontier, the workers fetch; the same crawl.

Every run is a real ``python -m crawlsel crawl`` process (it forks) against loopback
servers; --workers 2 is compared with --workers 1 file by file and record by record,
and politeness is measured at the server from its requests' timestamps.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from servers import HTTPTestServer

CRAWL = [sys.executable, "-m", "crawlsel", "crawl"]
HTML = [("Content-Type", "text/html; charset=utf-8")]
# Fields that depend on timing or on the output folder's name, not on what was crawled.
VARYING = ("elapsed_ms", "path")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CRAWL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def page(*links: str) -> bytes:
    return ("<html><body>" + "".join(f'<a href="{link}">x</a>' for link in links) + "</body></html>").encode()


def records(stdout: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    for row in rows:
        for field in VARYING:
            row.pop(field)
    return sorted(rows, key=lambda row: str(row["url"]))


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tree_site(server: HTTPTestServer, pages: int, robots: str) -> None:
    """A binary tree of pages (each found on one page only: its parent is known), links
    back to the front page, names that collide when case is folded, a 404 and a
    disallowed folder."""
    for i in range(pages):
        children = [f"/p{c}.html" for c in (2 * i + 1, 2 * i + 2) if c < pages]
        extra = ["/", "/private/x.html"] if i == 3 else ["/"]
        if i == 5:  # found on one page, in this order: Same.html is the name, same.html.1
            extra += ["/Same.html", "/same.html", "/missing.html"]
        server.add(f"/p{i}.html", page(*children, *extra), headers=HTML)
    server.add("/", page("/p0.html"), headers=HTML)
    server.add("/Same.html", b"upper", headers=HTML)
    server.add("/same.html", b"lower", headers=HTML)
    server.add("/missing.html", b"no", status=404)
    server.add("/private/x.html", page(), headers=HTML)
    server.add("/robots.txt", robots.encode(), headers=[("Content-Type", "text/plain")])


def test_two_workers_crawl_the_same_files_and_records_as_one(make_server, tmp_path: Path) -> None:
    first, second = make_server(), make_server()
    tree_site(first, 60, "User-agent: *\nDisallow: /private/\n")
    tree_site(second, 30, "User-agent: *\nDisallow: /private/\n")
    first.add("/", page("/p0.html", second.url("/")), headers=HTML)
    args = [first.url("/"), "--span-hosts", "--depth", "inf", "--json", "-q", "--per-host", "4"]
    one = run([*args, "--workers", "1", "-o", "one"], tmp_path)
    before = {server: len(server.requests) for server in (first, second)}
    two = run([*args, "--workers", "2", "-o", "two"], tmp_path)
    assert one.returncode == two.returncode == 1, two.stderr  # the two 404s
    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert records(one.stdout) == records(two.stdout)
    assert (tmp_path / "two" / f"127.0.0.1_{first.port}" / "same.html.1").read_bytes() == b"lower"
    rows = records(two.stdout)
    assert len(rows) == (60 + 30) + 2 * 6  # pages; /, Same, same, missing, robots, private each
    assert sum(1 for row in rows if row["skip_reason"] == "robots") == 2
    for server in (first, second):
        targets = [r.target for r in server.requests[before[server] :]]  # the --workers 2 run's
        assert len(targets) == len(set(targets)), "a page was fetched twice"
        assert "/private/x.html" not in targets and targets[0] == "/robots.txt"


def test_crawl_delay_holds_for_an_origin_shared_by_the_workers(make_server, tmp_path: Path) -> None:
    server = make_server()
    pages = {f"/{i}.html": page() for i in range(5)}
    for path, body in pages.items():
        server.add(path, body, headers=HTML)
    server.add("/", page(*pages), headers=HTML)
    server.add("/robots.txt", b"User-agent: *\nCrawl-delay: 0.25\n", headers=[("Content-Type", "text/plain")])
    done = run([server.url("/"), "--workers", "2", "--per-host", "4", "-q"], tmp_path)
    assert done.returncode == 0, done.stderr
    times = [r.at for r in server.requests if r.target != "/robots.txt"]
    assert len(times) == 6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.25 * 0.9, gaps  # one worker paces the origin: never two at once


def test_delay_holds_with_workers_and_per_host_stays_a_total(make_server, tmp_path: Path) -> None:
    paced, busy = make_server(), make_server()
    for i in range(3):
        paced.add(f"/{i}.html", page(), headers=HTML)
    paced.add("/", page(*(f"/{i}.html" for i in range(3))), headers=HTML)
    done = run([paced.url("/"), "--workers", "2", "--delay", "0.2", "--ignore-robots", "-q"], tmp_path)
    assert done.returncode == 0, done.stderr
    times = [r.at for r in paced.requests]
    assert len(times) == 4 and min(b - a for a, b in itertools.pairwise(times)) >= 0.2 * 0.9
    for i in range(16):
        busy.add(f"/{i}.html", page(), headers=HTML, delay=0.1)
    busy.add("/", page(*(f"/{i}.html" for i in range(16))), headers=HTML)
    done = run(
        [busy.url("/"), "--workers", "2", "--per-host", "2", "--ignore-robots", "-q", "-o", "b"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    # Requests being answered at once (each waits 0.1 s at the server): at most --per-host.
    slow = [r.at for r in busy.requests if r.target != "/"]
    events = sorted((t, step) for at in slow for t, step in ((at, 1), (at + 0.09, -1)))
    peak = max(itertools.accumulate(step for _, step in events))
    assert peak == 2


def test_workers_refuse_what_needs_one_process(make_server, tmp_path: Path) -> None:
    server = make_server()
    server.add("/", page(), headers=HTML)
    done = run([server.url("/"), "--workers", "2", "--cookie-jar", "jar.txt"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("crawlsel: error: --workers 2: cookies")
