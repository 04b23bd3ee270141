"""``crawlsel crawl --sitemaps``: the URLs of a host's sitemaps join the crawl.

A real threaded server on 127.0.0.1 serves robots.txt, a gzipped sitemap index,
the sitemap it names, and pages no link leads to; the crawl's JSON records and the
server's request log tell what was read and fetched.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.servers import HTTPTestServer
from tests.test_crawl import HTML, crawl, page, paths_requested, site

XML = [("Content-Type", "application/xml")]


def urlset(*locs: str) -> bytes:
    entries = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'.encode()


def sitemapindex(*locs: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'.encode()


def test_robots_sitemap_index_nested_sitemap_and_its_pages(server: HTTPTestServer, tmp_path: Path) -> None:
    base = server.base
    site(server, {"/": page("/a.html"), "/a.html": page(), "/orphan.html": page("/deep.html")})
    site(
        server,
        {"/deep.html": page()},
        robots=f"User-agent: *\nDisallow: /private/\nSitemap: {base}/maps/index.xml.gz\n",
    )
    server.add("/maps/index.xml.gz", gzip.compress(sitemapindex(f"{base}/maps/pages.xml")), headers=XML)
    pages = urlset(
        f"{base}/orphan.html", f"{base}/private/x.html", "http://elsewhere.invalid/x.html", f"{base}/a.html"
    )
    server.add("/maps/pages.xml", pages, headers=XML)
    code, records, out, err = crawl(tmp_path, f"{base}/", "--sitemaps")
    assert code == 0, err
    assert records[f"{base}/maps/index.xml.gz"]["via"] == "sitemap"
    assert records[f"{base}/maps/pages.xml"]["via"] == "sitemap"
    assert records[f"{base}/maps/pages.xml"]["links"] == 4
    assert records[f"{base}/orphan.html"]["via"] == "sitemap"
    assert records[f"{base}/deep.html"]["via"] == "link"  # a sitemap's page is crawled like a seed
    assert records[f"{base}/private/x.html"]["skip_reason"] == "robots"
    assert "http://elsewhere.invalid/x.html" not in records  # out of scope: dropped
    # /sitemap.xml is tried too; not being there is no failure of the crawl
    assert records[f"{base}/sitemap.xml"]["status"] == 404
    assert records[f"{base}/sitemap.xml"]["error"] is None
    assert paths_requested(server).count("/a.html") == 1  # linked and listed: fetched once
    host = next(out.iterdir()).name
    assert (out / host / "orphan.html").is_file()


def test_without_the_flag_no_sitemap_is_read(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page()}, robots=f"Sitemap: {server.base}/sitemap.xml\n")
    server.add("/sitemap.xml", urlset(f"{server.base}/orphan.html"), headers=XML)
    server.add("/orphan.html", page(), headers=HTML)
    code, records, _, err = crawl(tmp_path, f"{server.base}/")
    assert code == 0, err
    assert sorted(paths_requested(server)) == ["/", "/robots.txt"]


def test_ignore_robots_still_reads_sitemap_xml(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/docs/": page(), "/elsewhere.html": page()})
    server.add(
        "/sitemap.xml", urlset(f"{server.base}/docs/a.html", f"{server.base}/elsewhere.html"), headers=XML
    )
    server.add("/docs/a.html", page(), headers=HTML)
    code, records, _, err = crawl(
        tmp_path, f"{server.base}/docs/", "--sitemaps", "--ignore-robots", "--no-parent"
    )
    assert code == 0, err
    assert "/robots.txt" not in paths_requested(server)
    assert records[f"{server.base}/docs/a.html"]["via"] == "sitemap"
    assert f"{server.base}/elsewhere.html" not in records  # --no-parent applies to what it lists


def test_a_broken_sitemap_is_an_error_of_its_own_kind(server: HTTPTestServer, tmp_path: Path) -> None:
    site(server, {"/": page()}, robots="")
    server.add("/sitemap.xml", b"<urlset><url><loc>", headers=XML)
    code, records, _, _ = crawl(tmp_path, f"{server.base}/", "--sitemaps")
    assert records[f"{server.base}/sitemap.xml"]["error_kind"] == "sitemap"
    assert records[f"{server.base}/"]["error"] is None
    assert code != 0
