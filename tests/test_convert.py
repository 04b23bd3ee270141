"""``crawlsel crawl --convert-links``: a mirror browsable offline, as wget -k makes it.

A saved name holds "%3F" where the URL had "?", so its link escapes the "%": the
browser's decoding of "q%253Fx=1" gives the file name "q%3Fx=1".

A real threaded server on 127.0.0.1 serves a small site; after the crawl, the
converted files are compared byte for byte with what they must be, and a walk over
the mirror checks that every local link names a saved file.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from tests.servers import HTTPTestServer
from tests.test_crawl import HTML, crawl

CSS = [("Content-Type", "text/css")]

INDEX = (
    '<!doctype html><html><head><link rel=stylesheet href="s.css"><style>@import "t.css";</style></head>'
    '<body><a href="a.html">a</a> <a href="/dir/b.html#sec">b</a> <a href="q?x=1&amp;y=2">q</a>'
    ' <a href=missing.html>gone</a> <a href="mailto:me@example.org">m</a> <a href="#top">top</a>'
    ' <img src="img.png" srcset="img.png 1x, big.png 2x" style="background: url(img.png)">'
    ' <!-- <a href="a.html">in a comment</a> --></body></html>'
)
CONVERTED = (
    '<!doctype html><html><head><link rel=stylesheet href="s.css"><style>@import "t.css";</style></head>'
    '<body><a href="a.html">a</a> <a href="dir/b.html#sec">b</a> <a href="q%253Fx=1&amp;y=2">q</a>'
    ' <a href=BASE/missing.html>gone</a> <a href="mailto:me@example.org">m</a> <a href="#top">top</a>'
    ' <img src="img.png" srcset="img.png 1x, BASE/big.png 2x" style="background: url(img.png)">'
    ' <!-- <a href="a.html">in a comment</a> --></body></html>'
)


def serve(server: HTTPTestServer) -> None:
    server.add("/", INDEX.encode(), headers=HTML)
    server.add("/a.html", b'<a href="dir/b.html">b</a>', headers=HTML)
    server.add("/q?x=1&y=2", b'<a href="/">home</a><a href="./a.html?">a</a>', headers=HTML)
    server.add("/dir/b.html", b'<a href="../a.html">up</a><a href="c.html">c</a>', headers=HTML)
    server.add(
        "/dir/c.html", b'<base href="/"><a href="a.html">a</a><a href="dir/b.html">b</a>', headers=HTML
    )
    server.add(
        "/s.css", b"body { background: url('img.png') } p { background: url(\"dir/no.png\") }", headers=CSS
    )
    server.add("/t.css", b"@import 's.css';", headers=CSS)
    server.add("/img.png", b"\x89PNG", headers=[("Content-Type", "image/png")])


def test_links_in_saved_pages_point_to_the_saved_files(server: HTTPTestServer, tmp_path: Path) -> None:
    serve(server)
    code, records, out, err = crawl(tmp_path, server.url("/"), "--convert-links", "-p", "--ignore-robots")
    site = next(out.iterdir())
    assert (site / "index.html").read_bytes() == CONVERTED.replace("BASE", server.base).encode()
    assert (site / "dir" / "b.html").read_bytes() == b'<a href="../a.html">up</a><a href="c.html">c</a>'
    assert (
        site / "dir" / "c.html"
    ).read_bytes() == b'<base href="./"><a href="../a.html">a</a><a href="b.html">b</a>'
    assert (site / "q%3Fx=1&y=2").read_bytes() == b'<a href="index.html">home</a><a href="a.html">a</a>'
    assert (site / "s.css").read_bytes() == (
        b"body { background: url('img.png') } p { background: url(\""
        + server.base.encode()
        + b'/dir/no.png") }'
    )
    assert records[server.url("/missing.html")]["status"] == 404
    assert code != 0  # the 404 still counts


def test_every_local_link_of_a_converted_mirror_resolves(server: HTTPTestServer, tmp_path: Path) -> None:
    serve(server)
    _, _, out, _ = crawl(tmp_path, server.url("/"), "--convert-links", "-p", "--ignore-robots")
    checked = 0
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        text = re.sub(r"<!--.*?-->|<base [^>]*>", "", text, flags=re.S)
        for value in re.findall(
            r"""(?:href|src)=["']?([^"' >]+)|url\(["']?([^"')]+)|@import ["']([^"']+)""", text
        ):
            link = next(v for v in value if v).partition("#")[0]
            if not link or re.match(r"[a-z]+:", link):
                continue  # absolute URLs (pages not saved), mailto:, this document
            link = link.replace("&amp;", "&")
            target = (path.parent / unquote(link)).resolve()
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{path.relative_to(out)}: {link}"
            checked += 1
    assert checked >= 12


def test_without_the_flag_pages_stay_as_served(server: HTTPTestServer, tmp_path: Path) -> None:
    serve(server)
    _, _, out, _ = crawl(tmp_path, server.url("/"), "-p", "--ignore-robots")
    assert (next(out.iterdir()) / "index.html").read_bytes() == INDEX.encode()
