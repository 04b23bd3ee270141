"""Link extraction (crawlsel.crawl.links): each link source, each exclusion, hostile pages.

Pages are byte strings; the cases that matter to a crawler come from the WHATWG
tokenizer (comments, raw-text bodies, attribute entities, unquoted values) and from
what wget and browsers take as links and page requisites.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest

from crawlsel.crawl import links as links_module
from crawlsel.crawl.links import (
    MAX_LINKS,
    PageLinks,
    extract_css,
    extract_file,
    extract_html,
    header_links,
    looks_like_html,
)

URL = "http://example.com/dir/page.html"


@pytest.fixture(autouse=True, params=["lexbor", "scanner"])
def html_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both readers: lexbor (pages up to TREE_MAX_BYTES) and the scanner."""
    if request.param == "scanner":
        monkeypatch.setattr(links_module, "TREE_MAX_BYTES", -1)
    return str(request.param)


def links(html: str | bytes, url: str = URL) -> list[str]:
    body = html.encode() if isinstance(html, str) else html
    return extract_html(body, url).links


def requisites(html: str) -> list[str]:
    return extract_html(html.encode(), URL, requisites=True).requisites


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="a.html">', "http://example.com/dir/a.html"),
        ('<area shape=rect href="/map">', "http://example.com/map"),
        ('<frameset><frame src="f.html"></frameset>', "http://example.com/dir/f.html"),
        ('<iframe src="//other.example/i"></iframe>', "http://other.example/i"),
        ('<link rel="next" href="p2.html">', "http://example.com/dir/p2.html"),
        ('<link rel="prev" href="p0.html">', "http://example.com/dir/p0.html"),
        ('<meta http-equiv="refresh" content="5; url=/moved">', "http://example.com/moved"),
        ("<meta http-equiv=Refresh content=\"0;URL='q.html'\">", "http://example.com/dir/q.html"),
        ('<a href="https://secure.example/x">', "https://secure.example/x"),
    ],
)
def test_each_link_source(html: str, expected: str) -> None:
    assert links(html) == [expected]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<img src="i.png">', ["i.png"]),
        ('<img srcset="a.png 1x, b.png 2x">', ["a.png", "b.png"]),
        ('<img srcset="a.png,b.png 2x, c.png">', ["a.png,b.png", "c.png"]),  # a URL may hold commas
        ('<script src="s.js"></script>', ["s.js"]),
        ('<link rel="stylesheet" href="c.css">', ["c.css"]),
        ('<link rel="shortcut icon" href="f.ico">', ["f.ico"]),
        ('<link rel="apple-touch-icon" href="t.png">', ["t.png"]),
        ('<link rel=preload href="font.woff2" as=font>', ["font.woff2"]),
        ('<object data="o.swf"></object>', ["o.swf"]),
        ('<embed src="e.swf">', ["e.swf"]),
        ('<video src="v.mp4" poster="p.jpg"><source src="v.webm"></video>', ["v.mp4", "p.jpg", "v.webm"]),
        ('<picture><source srcset="w.webp 1x, w2.webp 2x"></picture>', ["w.webp", "w2.webp"]),
        ('<audio src="a.ogg"></audio>', ["a.ogg"]),
        ('<input type="image" src="button.png"><input type=text src=no.png>', ["button.png"]),
        ('<body background="bg.gif">', ["bg.gif"]),
        ("<style>@import 'imp.css'; p { background: url(\"bg.png\") }</style>", ["imp.css", "bg.png"]),
        ("<div style=\"background-image: url('d.png')\">", ["d.png"]),
        ("<style>/* url(commented.png) */ a { b: url( spaced.png ) }</style>", ["spaced.png"]),
    ],
)
def test_each_requisite_source(html: str, expected: list[str]) -> None:
    assert requisites(html) == [urljoin(URL, name) for name in expected]


def test_requisites_are_not_links_and_are_skipped_unless_asked() -> None:
    page = '<img src="i.png"><a href="a.html"><link rel=stylesheet href=c.css>'
    assert extract_html(page.encode(), URL) == PageLinks(["http://example.com/dir/a.html"], [], True)
    assert requisites(page) == ["http://example.com/dir/i.png", "http://example.com/dir/c.css"]


@pytest.mark.parametrize(
    "html",
    [
        "<!-- <a href=in-comment.html> -->",
        "<!--\n<a href='in-comment.html'>\n--!>",
        "<script>document.write('<a href=\"in-script.html\">')</script>",
        "<SCRIPT type=text/javascript>var a = '<a href=x.html>'; if (a < b) {}</SCRIPT >",
        "<style>a::after { content: '<a href=in-style.html>' }</style>",
        "<textarea><a href=in-textarea.html></textarea>",
        "<title><a href=in-title.html></title>",
        "<div title='<a href=in-attribute.html>'></div>",
        '<a rel="nofollow" href="nofollow.html">',
        '<a rel="external NOFOLLOW" href="nofollow.html">',
        '<a href="mailto:someone@example.com">',
        '<a href="javascript:void(0)">',
        '<a href="data:text/html,<p>">',
        '<a href="ftp://example.com/file">',
        '<a href="#top">',
        "<a name=anchor>",
        '<link rel="stylesheet" href="style.css">',
    ],
)
def test_exclusions(html: str) -> None:
    assert links(html + '<a href="after.html">') == ["http://example.com/dir/after.html"]


def test_comment_forms() -> None:
    # WHATWG: <!--> and <!---> are whole (empty) comments; an unclosed one runs to the end.
    assert links("<!--><a href=a.html><!---><a href=b.html>") == [
        "http://example.com/dir/a.html",
        "http://example.com/dir/b.html",
    ]
    assert links("<a href=a.html><!-- <a href=b.html>") == ["http://example.com/dir/a.html"]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="q?a=1&amp;b=2">', "q?a=1&b=2"),
        ('<a href="q?a=1&b=2">', "q?a=1&b=2"),
        # a legacy name ("&reg", "&copy") stays text before "=" or a letter
        ('<a href="q?x=1&region=eu&copy=2">', "q?x=1&region=eu&copy=2"),
        ('<a href="q?a&amp">', "q?a&"),
        ('<a href="&#x2F;root&#47;x">', "/root/x"),
        ("<a href=unquoted.html>", "unquoted.html"),
        ("<a href='single.html'>", "single.html"),
        ("<A HREF=UPPER.HTML>", "UPPER.HTML"),
        ("<a\n  class=x\n  href\n  =\n  'spread.html'\n>", "spread.html"),
        ('<a href="  padded.html\n ">', "padded.html"),
        ('<a href="a>b.html">', "a%3Eb.html"),
        ("<a href=x.html/>", "x.html/"),  # an unquoted value keeps its slash
        ('<a href="first.html" href="second.html">', "first.html"),
        ('<a href="with space/é.html">', "with%20space/%C3%A9.html"),
        ('<a href="line\nbreak.html">', "linebreak.html"),
        ('<a href="../up.html">', "../up.html"),
        ('<a href="page.html#section">', "page.html"),
    ],
)
def test_attribute_values(html: str, expected: str) -> None:
    assert links(html) == [urljoin(URL, expected)]


def test_documents_order_duplicates_and_fragments() -> None:
    page = "<a href=b.html><a href=a.html#x><a href=b.html#y><a href=a.html><a href=/dir/b.html>"
    assert links(page) == ["http://example.com/dir/b.html", "http://example.com/dir/a.html"]


def test_base_href() -> None:
    page = "<head><base href='http://cdn.example/root/'></head><a href=x.html><a href=/abs><img src=i.png>"
    found = extract_html(page.encode(), URL, requisites=True)
    assert found.links == ["http://cdn.example/root/x.html", "http://cdn.example/abs"]
    assert found.requisites == ["http://cdn.example/root/i.png"]
    # A relative base is resolved against the page; the first base wins, wherever it is.
    assert links("<a href=x><base href=sub/><base href=/other/>") == ["http://example.com/dir/sub/x"]
    assert links("<base href='javascript:x'><a href=x>") == ["http://example.com/dir/x"]


def test_robots_meta_nofollow_keeps_requisites() -> None:
    for content in ("nofollow", "noindex, NOFOLLOW", "none"):
        page = f'<meta name="robots" content="{content}"><a href=a.html><img src=i.png>'
        found = extract_html(page.encode(), URL, requisites=True)
        assert found == PageLinks([], ["http://example.com/dir/i.png"], False)
    assert extract_html(b'<meta name=robots content="noindex"><a href=a.html>', URL).follow


def test_meta_charset_decodes_values() -> None:
    page = '<meta charset="iso-8859-1"><a href="caf\xe9.html">'.encode("latin-1")
    assert links(page) == ["http://example.com/dir/caf%C3%A9.html"]
    assert links(b'<a href="caf\xff.html">') == ["http://example.com/dir/caf%EF%BF%BD.html"]


def test_header_links() -> None:
    headers = [
        ("Refresh", "3; url=/refreshed"),
        ("Link", '<p2.html>; rel="next", </style.css>; rel=stylesheet, <p0.html>; rel=prev'),
        ("Content-Type", "text/html"),
    ]
    assert header_links(headers, URL) == (
        ["http://example.com/refreshed", "http://example.com/dir/p2.html", "http://example.com/dir/p0.html"],
        True,
    )
    assert header_links([("X-Robots-Tag", "noindex, nofollow"), ("Link", "<n>; rel=next")], URL) == (
        [],
        False,
    )
    assert header_links([("x-robots-tag", "none")], URL) == ([], False)
    # A group after "otherbot:" is for that crawler; max-image-preview:none is not "none".
    assert header_links([("X-Robots-Tag", "otherbot: nofollow"), ("Refresh", "0;url=r")], URL)[1]
    assert header_links([("X-Robots-Tag", "max-image-preview:none")], URL)[1]
    assert header_links([("Refresh", "10")], URL) == ([], True)


@pytest.mark.parametrize(
    ("content_type", "start", "expected"),
    [
        ("text/html; charset=utf-8", b"", True),
        ("application/xhtml+xml", b"<?xml", True),
        ("TEXT/HTML", b"", True),
        ("text/plain", b"<html>", False),  # a declared type is not second-guessed
        ("image/png", b"<!DOCTYPE html>", False),
        (None, b"  \n<!DOCTYPE HTML>", True),
        ("", b"<html lang=en>", True),
        (None, b"<HEAD>", True),
        (None, b"<p>hi", True),
        (None, b"<!-- c -->", True),
        (None, b"<pre>", False),
        (None, b"<html", False),  # needs a tag-terminating byte
        (None, b"\x89PNG\r\n", False),
        (None, b"plain text <html>", False),
    ],
)
def test_looks_like_html(content_type: str | None, start: bytes, expected: bool) -> None:
    assert looks_like_html(content_type, start) is expected


def test_extract_css() -> None:
    css = b"""@import "base.css"; @import url('print.css') print;
    /* url(no.png) */ .a { background: URL(img/a.png) } .b { src: url("../f.woff") format("woff") }
    .c { background: url(data:image/png;base64,AAAA) } .d { background: url() }"""
    assert extract_css(css, "http://example.com/css/site.css") == [
        "http://example.com/css/base.css",
        "http://example.com/css/print.css",
        "http://example.com/css/img/a.png",
        "http://example.com/f.woff",
    ]


def test_extract_file_scans_a_saved_page(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<a href=a.html>" + b"x" * 1000 + b"<a href=b.html>")
    assert extract_file(str(path), URL).links == [
        "http://example.com/dir/a.html",
        "http://example.com/dir/b.html",
    ]
    assert extract_file(str(path), URL, max_bytes=100).links == ["http://example.com/dir/a.html"]
    (tmp_path / "empty.html").write_bytes(b"")
    assert extract_file(str(tmp_path / "empty.html"), URL) == PageLinks([], [], True)


def test_large_single_line_page(tmp_path: Path) -> None:
    unit = b'<span class="w">lorem &amp; ipsum</span> ' * 20 + b"<a href='/p/%d'>x</a>"
    body = b"<html><body>" + b"".join(unit % i for i in range(5_000_000 // len(unit)))
    start = time.perf_counter()
    found = extract_html(body, URL, requisites=True)
    assert len(found.links) == 5_000_000 // len(unit)
    assert found.links[-1] == f"http://example.com/p/{len(found.links) - 1}"
    path = tmp_path / "big.html"
    path.write_bytes(body)
    assert extract_file(str(path), URL).links == found.links
    assert time.perf_counter() - start < 10


def test_links_per_page_are_capped() -> None:
    body = b"".join(b"<a href=/%d>" % i for i in range(MAX_LINKS + 10))
    found = links(body)
    assert len(found) == MAX_LINKS
    assert found[-1] == f"http://example.com/{MAX_LINKS - 1}"


@pytest.mark.parametrize(
    "body",
    [
        b"<a " * 100_000,  # never closed: the rest is inside the tag
        b"<a href=ok.html><p title='" + b"<a href=x>" * 50_000,
        b"<a href=ok.html><!--" + b"<a href=x>" * 50_000,
        b"<a href=ok.html><script>" + b"<a href=x>" * 50_000,
        b"<a href=ok.html>" + b"<" * 200_000 + b"&" * 100_000,
        b"<a href=ok.html>" + b"<a x" + b"=" * 100_000,
        b"<a href=ok.html><img srcset='" + b"," * 100_000 + b"'>",
        b"<a href=ok.html><style>" + b"url(" * 50_000 + b"/*" * 50_000,
        b"<a href=ok.html><a href='http://[::1'><a href='http://\xff\xfe/'><a href='\x00'>",
        b"<a href=ok.html><meta http-equiv=refresh content='" + b"9" * 100_000 + b"'>",
    ],
)
def test_hostile_markup_gives_a_result_quickly(body: bytes) -> None:
    start = time.perf_counter()
    found = extract_html(body, URL, requisites=True)
    assert time.perf_counter() - start < 2
    assert all(url.startswith("http") for url in found.links + found.requisites)
    if body.startswith(b"<a href=ok.html>"):
        assert found.links[0] == "http://example.com/dir/ok.html"


def test_random_bytes_never_raise() -> None:
    rnd = random.Random(13)
    pieces = [b"<a href=", b"<", b">", b"'", b'"', b"=", b"<!--", b"-->", b"<script>", b"</script", b"&amp"]
    for _ in range(300):
        body = b"".join(rnd.choice(pieces) if rnd.random() < 0.5 else rnd.randbytes(3) for _ in range(200))
        found = extract_html(body, URL, requisites=True)
        for url in found.links + found.requisites:
            assert url.isascii() and " " not in url
        assert isinstance(header_links([("Link", body.decode("latin-1"))], URL), tuple)
        assert isinstance(extract_css(body, URL), list)
    extract_html(rnd.randbytes(2_000_000), URL, requisites=True)


@pytest.mark.parametrize(
    ("script", "after"),
    [
        ("<script><!--<script></script><a href=hidden.html></script>", True),  # double-escaped
        ("<script><!-- x --></script>", True),
        ("<script><!--></script>", True),
        ("<script><!--<script>--></script>", True),
        ("<script><!--<script></script>--><a href=hidden.html></script>", True),
        ("<script><!--<script>", False),  # never closed: the rest is script
    ],
)
def test_script_escapes(script: str, after: bool) -> None:
    expected = ["http://example.com/dir/after.html"] if after else []
    assert links(script + "<a href=after.html>") == expected


def test_link_rels_followed_as_wget_does() -> None:
    # wget -r follows every <link href> that is not a requisite (the Python docs'
    # rel=search names _static/opensearch.xml); connection hints name no document.
    page = (
        '<link rel="search" href="os.xml"><link rel=alternate href=feed.xml>'
        '<link rel=preconnect href="//cdn.example.com"><link rel="dns-prefetch" href="x.html">'
        '<link rel="stylesheet" href="c.css">'
    )
    assert links(page) == ["http://example.com/dir/os.xml", "http://example.com/dir/feed.xml"]
