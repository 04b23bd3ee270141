"""``crawlsel crawl`` end to end: discovery, scope, robots.txt, pacing, limits, records.

Every site is served by a real threaded server on 127.0.0.1; what the crawl did
is read from its JSON records, the files it saved, and the requests the server saw.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from crawlsel.cli import main
from tests.servers import HTTPTestServer

HTML = [("Content-Type", "text/html; charset=utf-8")]


def page(*links: str, extra: str = "") -> bytes:
    anchors = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
    return f"<!doctype html><html><head>{extra}</head><body>{anchors}</body></html>".encode()


def site(server: HTTPTestServer, pages: dict[str, bytes], robots: str | None = None) -> None:
    for path, body in pages.items():
        server.add(path, body, headers=HTML)
    if robots is not None:
        server.add("/robots.txt", robots.encode(), headers=[("Content-Type", "text/plain")])


def crawl(tmp_path: Path, *args: str) -> tuple[int, dict[str, dict], Path, str]:
    """Run a quiet crawl with --json; (exit status, records by URL, folder, stderr)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["crawl", "-o", str(out), "--json", "-q", *args], catch_exceptions=False
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_url = {r["url"]: r for r in records}
    assert len(by_url) == len(records), "a URL was reported twice"
    return result.exit_code, by_url, out, result.stderr


def paths_requested(server: HTTPTestServer) -> list[str]:
    return [r.target for r in server.requests]


def saved_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_links_are_followed_breadth_first_with_their_records(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page("/a.html", "b.html"), "/a.html": page("/c.html"), "/b.html": page("/")})
    site(server, {"/c.html": page("http://elsewhere.invalid/x.html")})
    status, records, out, _ = crawl(tmp_path, server.url("/"), "--per-host", "1")
    assert status == 0
    folder = f"127.0.0.1_{server.port}"
    assert saved_files(out) == {
        f"{folder}/index.html",
        f"{folder}/a.html",
        f"{folder}/b.html",
        f"{folder}/c.html",
    }
    root = records[server.url("/")]
    assert (root["via"], root["depth"], root["parent"], root["links"]) == ("seed", 0, None, 2)
    c = records[server.url("/c.html")]
    assert (c["via"], c["depth"], c["parent"]) == ("link", 2, server.url("/a.html"))
    assert records[server.url("/robots.txt")]["via"] == "robots"
    # robots.txt first, each page once, breadth first (one connection: the order handed out)
    assert paths_requested(server) == ["/robots.txt", "/", "/a.html", "/b.html", "/c.html"]


def test_referer_is_the_page_the_link_was_found_on(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page("/a.html"), "/a.html": page()})
    crawl(tmp_path, server.url("/"), "--ignore-robots")
    referers = {r.target: r.headers.get("referer") for r in server.requests}
    assert referers == {"/": None, "/a.html": server.url("/")}


def test_depth_limits_how_far_links_are_followed(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page("/1.html"), "/1.html": page("/2.html"), "/2.html": page("/3.html")})
    status, records, _, _ = crawl(tmp_path, server.url("/"), "--depth", "1")
    assert status == 0
    assert "/2.html" not in paths_requested(server)
    assert set(records) == {server.url(p) for p in ("/", "/1.html", "/robots.txt")}


def test_robots_txt_disallow_gives_skipped_records_never_requests(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    site(
        server,
        {"/": page("/private/secret.html", "/public.html", "/x.pdf"), "/public.html": page()},
        robots="User-agent: *\nDisallow: /private/\nDisallow: /*.pdf$\n",
    )
    status, records, _, _ = crawl(tmp_path, server.url("/"))
    assert status == 0
    for path in ("/private/secret.html", "/x.pdf"):
        assert path not in paths_requested(server)
        record = records[server.url(path)]
        assert record["skipped"] is True and record["skip_reason"] == "robots"
    assert records[server.url("/public.html")]["status"] == 200


def test_robots_group_of_the_product_token_wins(server: HTTPTestServer, tmp_path: Path) -> None:
    site(
        server,
        {"/": page("/a.html", "/b.html"), "/a.html": page(), "/b.html": page()},
        robots="User-agent: *\nDisallow: /a.html\n\nUser-agent: crawlsel\nDisallow: /b.html\n",
    )
    crawl(tmp_path, server.url("/"))
    assert "/a.html" in paths_requested(server) and "/b.html" not in paths_requested(server)


def test_robots_404_allows_everything_and_the_crawl_succeeds(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page("/a.html"), "/a.html": page()})
    status, records, _, _ = crawl(tmp_path, server.url("/"))
    assert status == 0
    robots = records[server.url("/robots.txt")]
    assert robots["status"] == 404 and robots["error"] is None
    assert records[server.url("/a.html")]["status"] == 200


def test_robots_5xx_disallows_the_origin(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page()})
    server.add("/robots.txt", b"down", status=500, reason="Internal Server Error")
    status, records, _, _ = crawl(tmp_path, server.url("/"), "--retries", "0")
    assert paths_requested(server) == ["/robots.txt"]
    assert records[server.url("/")]["skip_reason"] == "robots"
    assert status == 1  # robots.txt failed: nothing could be crawled


def test_ignore_robots_says_so_and_fetches_no_robots_txt(server: HTTPTestServer, tmp_path: Path) -> None:
    site(
        server,
        {"/": page("/private/a.html"), "/private/a.html": page()},
        robots="User-agent: *\nDisallow: /\n",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["crawl", "-o", str(out), "--ignore-robots", server.url("/")])
    assert result.exit_code == 0
    assert "--ignore-robots" in result.stderr
    assert "/robots.txt" not in paths_requested(server)
    assert "/private/a.html" in paths_requested(server)


def test_crawl_delay_spaces_requests_at_the_server(server: HTTPTestServer, tmp_path: Path) -> None:
    pages = {f"/{i}.html": page() for i in range(4)}
    site(server, {"/": page(*pages), **pages}, robots="User-agent: *\nCrawl-delay: 0.3\n")
    status, _, _, _ = crawl(tmp_path, server.url("/"), "--per-host", "4")
    assert status == 0
    times = [r.at for r in server.requests if r.target != "/robots.txt"]
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.3 * 0.9, gaps  # the server's clock reading lags a little behind


def test_delay_and_rate_space_requests(make_server, tmp_path: Path) -> None:
    for option, gap in (("--delay", "0.2"), ("--rate", "5")):
        server = make_server()
        pages = {f"/{i}.html": page() for i in range(3)}
        site(server, {"/": page(*pages), **pages})
        crawl(tmp_path / option, server.url("/"), option, gap, "--ignore-robots")
        times = [r.at for r in server.requests]
        assert len(times) == 4
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2 * 0.9


def test_429_with_retry_after_pauses_the_origin_not_others(make_server, tmp_path: Path) -> None:
    busy, other = make_server(), make_server()
    busy_pages = {f"/{i}.html": page() for i in range(3)}
    site(busy, busy_pages)
    busy.add("/", page(*busy_pages, f"{other.base}/"), headers=HTML)
    # The first answer to /0.html is 429; the retry gets the page.
    busy.add("/0.html", b"slow down", status=429, reason="Too Many Requests", headers=[("Retry-After", "1")])
    other.add("/", page(*(f"/{i}.html" for i in range(4))), headers=HTML)
    for i in range(4):
        other.add(f"/{i}.html", page(), headers=HTML, delay=0.3)  # busy for the whole pause
    status, records, _, _ = crawl(
        tmp_path, busy.url("/"), other.url("/"), "--ignore-robots", "--retries", "0", "--per-host", "1"
    )
    assert records[busy.url("/0.html")]["status"] == 429
    refused = next(r.at for r in busy.requests if r.target == "/0.html")
    later = [r.at for r in busy.requests if r.at > refused]
    assert later and min(later) >= refused + 0.9  # the whole origin waited
    assert any(refused < r.at < refused + 0.9 for r in other.requests)  # the other did not


def test_urls_that_normalise_alike_are_fetched_once(server: HTTPTestServer, tmp_path: Path) -> None:
    site(
        server,
        {"/": page("/a.html", "/./a.html", "/b/../a.html", "/%61.html#top", "A.HTML"), "/a.html": page()},
    )
    crawl(tmp_path, server.url("/"))
    assert paths_requested(server).count("/a.html") == 1


def test_an_endless_calendar_stops_at_the_trap_rules(server: HTTPTestServer, tmp_path: Path) -> None:
    for depth in range(12):
        server.add("/cal/" + "next/" * depth, page("next/"), headers=HTML)
    status, _, _, _ = crawl(tmp_path, server.url("/cal/"), "--depth", "inf")
    assert status == 0
    deepest = max(t.count("next/") for t in paths_requested(server))
    assert deepest == 3  # a fourth repeat of a segment is a trap


def test_max_pages_and_max_per_host(server: HTTPTestServer, tmp_path: Path) -> None:
    pages = {f"/{i}.html": page() for i in range(10)}
    site(server, {"/": page(*pages), **pages})
    _, records, _, _ = crawl(tmp_path / "a", server.url("/"), "--max-pages", "4", "--ignore-robots")
    assert len(records) == 4 and len(server.requests) == 4
    _, records, _, _ = crawl(tmp_path / "b", server.url("/"), "--max-per-host", "3", "--ignore-robots")
    assert len(records) == 3


def test_scope_hosts_domains_parent_and_patterns(make_server, tmp_path: Path) -> None:
    home, other = make_server(), make_server()
    site(other, {"/x.html": page(), "/y.html": page()})
    links = [f"http://docs.example.test:{other.port}/x.html", f"http://other.test:{other.port}/y.html"]
    site(home, {"/docs/": page("/docs/a.html", "/up.html", "/docs/tag/t.html", *links)})
    site(home, {"/docs/a.html": page(), "/up.html": page(), "/docs/tag/t.html": page()})
    resolve = [f"--resolve={name}:{other.port}:127.0.0.1" for name in ("docs.example.test", "other.test")]
    base = [home.url("/docs/"), "--ignore-robots", *resolve]

    crawl(tmp_path / "1", *base)  # the seed's host only
    assert other.requests == []
    assert sorted(paths_requested(home)) == ["/docs/", "/docs/a.html", "/docs/tag/t.html", "/up.html"]

    home.requests.clear()
    crawl(tmp_path / "2", *base, "--domain", "example.test", "--no-parent", "--exclude", "/tag/")
    assert [r.headers["host"] for r in other.requests] == [f"docs.example.test:{other.port}"]
    assert sorted(paths_requested(home)) == ["/docs/", "/docs/a.html"]

    other.requests.clear()
    crawl(tmp_path / "3", *base, "--span-hosts", "--include", r"/[xy]\.html$")
    assert sorted(paths_requested(other)) == ["/x.html", "/y.html"]


def test_nofollow_in_rel_meta_and_header(server: HTTPTestServer, tmp_path: Path) -> None:
    server.add("/", page("/a.html", extra="") + b'<a rel="nofollow" href="/no.html">n</a>', headers=HTML)
    server.add(
        "/a.html", page("/no2.html", extra='<meta name="robots" content="noindex, nofollow">'), headers=HTML
    )
    server.add("/b.html", page("/no3.html"), headers=[*HTML, ("X-Robots-Tag", "nofollow")])
    crawl(tmp_path, server.url("/"), server.url("/b.html"), "--ignore-robots")
    requested = paths_requested(server)
    assert "/a.html" in requested
    assert not {"/no.html", "/no2.html", "/no3.html"} & set(requested)


def test_hostile_pages_give_records(server: HTTPTestServer, tmp_path: Path) -> None:
    many = "".join(f'<a href="/p{i}">' for i in range(20_000)).encode()
    server.add("/", page("/line.html", "/binary.html", "/many.html", "/broken.html"), headers=HTML)
    server.add("/line.html", b"<a href=/x>" + b"x" * 5_000_000, headers=HTML)
    server.add("/binary.html", bytes(range(256)) * 4096, headers=HTML)
    server.add("/many.html", many, headers=HTML)
    server.add("/broken.html", b"<a href='/q.html'<<><a href=\"/r.html\" <!-- <a href=/s.html>", headers=HTML)
    status, records, _, _ = crawl(tmp_path, server.url("/"), "--ignore-robots", "--depth", "1")
    assert records[server.url("/many.html")]["links"] == 20_000
    assert records[server.url("/line.html")]["links"] >= 1
    assert records[server.url("/binary.html")]["status"] == 200


def fan_out_site(server: HTTPTestServer, width: int = 30) -> set[str]:
    """A front page linking to ``width`` pages, each linking to one more: the paths."""
    paths = {"/"}
    server.add("/", page(*(f"/p{i}.html" for i in range(width))), headers=HTML)
    for i in range(width):
        server.add(f"/p{i}.html", page(f"/q{i}.html"), headers=HTML, delay=0.02)
        server.add(f"/q{i}.html", page(), headers=HTML, delay=0.02)
        paths |= {f"/p{i}.html", f"/q{i}.html"}
    return paths


def start_crawl(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "crawlsel", "crawl", "-q", "--per-host", "1", "--ignore-robots", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def wait_for_requests(server: HTTPTestServer, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(server.requests) < n:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.01)


def test_state_resumes_a_killed_crawl_without_fetching_a_saved_page_again(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    expected = fan_out_site(server)
    out, state = tmp_path / "out", tmp_path / "crawl.db"
    stops = []  # how many requests the server had seen when each signal was sent
    for stop in (signal.SIGKILL, signal.SIGINT):
        process = start_crawl(server.url("/"), "-o", str(out), "--state", str(state))
        wait_for_requests(server, len(server.requests) + 12)
        process.send_signal(stop)
        stops.append(len(server.requests))
        assert process.wait(timeout=30) == (-9 if stop == signal.SIGKILL else 130)
    finished = start_crawl(server.url("/"), "-o", str(out), "--state", str(state))
    assert finished.wait(timeout=60) == 0
    folder = f"127.0.0.1_{server.port}"
    names = {p if p != "/" else "/index.html" for p in expected}
    assert saved_files(out) == {folder + name for name in names}  # no .part file left either
    counts: dict[str, int] = {}
    for path in paths_requested(server):
        counts[path] = counts.get(path, 0) + 1
    assert set(counts) == expected
    again = {path for path, n in counts.items() if n > 1}
    # Only the pages of the turn a stop landed in are asked for again: on its one
    # connection, the page in flight and the one answered but not yet saved (the
    # dispatcher sends a turn's requests before it saves the turn's pages).
    requested = paths_requested(server)
    near_a_stop = {path for n in stops for path in requested[max(0, n - 3) : n]}
    assert again <= near_a_stop, (again, stops)
    assert len(again) <= 2 * len(stops), again


def test_a_folder_and_its_index_html_are_one_file_as_with_wget(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    # Both URLs are fetched (they may differ), but a mirror has one index.html, not
    # index.html and index.html.1 (wget -r writes both to index.html too).
    site(server, {"/": page("/index.html", "/d/"), "/index.html": page("/"), "/d/": page("index.html")})
    site(server, {"/d/index.html": page("../")})
    status, records, out, _ = crawl(tmp_path, server.url("/"), "--ignore-robots")
    assert status == 0
    assert len(records) == 4
    host = next(out.iterdir()).name
    assert saved_files(out) == {f"{host}/index.html", f"{host}/d/index.html"}


def redirect(server: HTTPTestServer, path: str, to: str, status: int = 301) -> None:
    server.add(path, b"", status=status, reason="Moved", headers=[("Location", to)])


def test_a_redirect_target_is_a_url_of_the_crawl(make_server, tmp_path: Path) -> None:
    # The target goes back to the frontier (via "redirect"): in scope it is fetched
    # once, links resolve against it; out of scope, or disallowed, it is not fetched.
    server, other = make_server(), make_server()
    site(server, {"/": page("/old", "/gone", "/private-link", "/new/"), "/new/": page("a.html")}, robots="")
    site(server, {"/new/a.html": page(), "/private/x.html": page()})
    server.add(
        "/robots.txt", b"User-agent: *\nDisallow: /private/\n", headers=[("Content-Type", "text/plain")]
    )
    redirect(server, "/old", "/new/")  # to a page the seed also links: fetched once
    elsewhere = f"http://localhost:{other.port}/elsewhere.html"
    redirect(server, "/gone", elsewhere, 302)  # another host name: out of scope
    redirect(server, "/private-link", "/private/x.html")
    other.add("/elsewhere.html", page(), headers=HTML)
    status, records, out, _ = crawl(tmp_path, server.url("/"))
    assert status == 0
    old = records[server.url("/old")]
    assert (old["status"], old["path"], old["error"], old["location"]) == (
        301,
        None,
        None,
        server.url("/new/"),
    )
    assert records[server.url("/gone")]["location"] == elsewhere
    assert other.requests == []
    assert records[server.url("/private/x.html")]["skip_reason"] == "robots"
    assert records[server.url("/new/a.html")]["parent"] == server.url("/new/")
    assert paths_requested(server).count("/new/") == 1
    assert "/private/x.html" not in paths_requested(server)


def test_a_redirect_found_first_gives_its_target_via_redirect(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page("/old"), "/new.html": page("sub.html"), "/sub.html": page()})
    redirect(server, "/old", "/new.html", 308)
    redirect(server, "/robots.txt", "/robots-file.txt")  # RFC 9309: robots.txt redirects are followed
    server.add(
        "/robots-file.txt", b"User-agent: *\nDisallow: /sub\n", headers=[("Content-Type", "text/plain")]
    )
    status, records, _, _ = crawl(tmp_path, server.url("/"))
    assert status == 0
    new = records[server.url("/new.html")]
    assert (new["via"], new["parent"], new["depth"], new["status"]) == (
        "redirect",
        server.url("/old"),
        1,
        200,
    )
    assert records[server.url("/sub.html")]["skip_reason"] == "robots"
