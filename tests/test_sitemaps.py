"""Sitemaps (crawlsel.crawl.sitemaps): the formats, and documents built to hurt a reader.

The hostile cases are the classic XML ones (billion laughs, external entities, a DTD
fetched from elsewhere) and gzip bombs; each must end quickly with a one-line error,
in bounded memory, and without raising.
"""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
import zlib
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from crawlsel.crawl.sitemaps import MAX_SITEMAP_BYTES, MAX_URLS, Sitemap, parse_sitemap

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def urlset(*locs: str, ns: str = NS, extra: str = "") -> bytes:
    body = "".join(f"<url><loc>{loc}</loc>{extra}</url>" for loc in locs)
    xmlns = f' xmlns="{ns}"' if ns else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset{xmlns}>{body}</urlset>'.encode()


def test_urlset_in_order() -> None:
    data = urlset("http://example.com/", "https://example.com/b?x=1", "http://example.com/c")
    assert parse_sitemap(data) == Sitemap(
        ["http://example.com/", "https://example.com/b?x=1", "http://example.com/c"], [], None
    )


def test_urlset_other_children_ignored() -> None:
    data = (
        f'<urlset xmlns="{NS}"><url><loc>http://example.com/</loc><lastmod>2024-01-01</lastmod>'
        "<changefreq>daily</changefreq><priority>0.5</priority></url></urlset>"
    ).encode()
    assert parse_sitemap(data).urls == ["http://example.com/"]


def test_sitemapindex() -> None:
    data = (
        f'<sitemapindex xmlns="{NS}"><sitemap><loc>http://example.com/s1.xml.gz</loc>'
        "<lastmod>2024-01-01</lastmod></sitemap><sitemap><loc>http://example.com/s2.xml</loc></sitemap>"
        "</sitemapindex>"
    ).encode()
    assert parse_sitemap(data) == Sitemap(
        [], ["http://example.com/s1.xml.gz", "http://example.com/s2.xml"], None
    )


def test_no_namespace_and_older_google_namespace() -> None:
    assert parse_sitemap(urlset("http://example.com/", ns="")).urls == ["http://example.com/"]
    old = urlset("http://example.com/", ns="http://www.google.com/schemas/sitemap/0.84")
    assert parse_sitemap(old).urls == ["http://example.com/"]


def test_prefixed_sitemap_namespace() -> None:
    data = f'<s:urlset xmlns:s="{NS}"><s:url><s:loc>http://example.com/</s:loc></s:url></s:urlset>'.encode()
    assert parse_sitemap(data).urls == ["http://example.com/"]


def test_foreign_namespace_root_refused() -> None:
    found = parse_sitemap(urlset("http://example.com/", ns="http://example.org/other"))
    assert found.urls == []
    assert found.error == "not a sitemap: root element <urlset> in http://example.org/other"


def test_extensions_ignored() -> None:
    image = (
        '<image:image xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        "<image:loc>http://example.com/photo.jpg</image:loc></image:image>"
        '<news:news xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><news:loc>http://example.com/n</news:loc>'
        "<news:title>t</news:title></news:news>"
        '<xhtml:link xmlns:xhtml="http://www.w3.org/1999/xhtml" rel="alternate" hreflang="de" href="http://example.com/de"/>'
        '<loc xmlns="http://example.org/not-sitemaps">http://example.com/foreign</loc>'
    )
    assert parse_sitemap(urlset("http://example.com/page", extra=image)) == Sitemap(
        ["http://example.com/page"], [], None
    )


def test_loc_outside_url_ignored() -> None:
    data = f'<urlset xmlns="{NS}"><loc>http://example.com/a</loc><url><x><loc>http://example.com/b</loc></x></url></urlset>'
    assert parse_sitemap(data.encode()) == Sitemap([], [], None)


def test_whitespace_cdata_entities_in_loc() -> None:
    data = urlset(
        "\n   http://example.com/a\t\r\n ",
        "<![CDATA[http://example.com/b?x=1&y=2]]>",
        "http://example.com/c?x=1&amp;y=2&lt;&gt;&quot;&apos;",
        "http://example.com/&#100;&#x65;",
        "http://exa<!-- split -->mple.com/e",
    )
    assert parse_sitemap(data).urls == [
        "http://example.com/a",
        "http://example.com/b?x=1&y=2",
        "http://example.com/c?x=1&y=2<>\"'",
        "http://example.com/de",
        "http://example.com/e",
    ]


def test_non_http_and_relative_locs_dropped() -> None:
    data = urlset(
        "ftp://example.com/f",
        "javascript:alert(1)",
        "mailto:a@example.com",
        "/relative",
        "http://",
        "http://[::1/broken",
        "http://example.com/with space",
        "http://example.com:port/",
        "http://example.com:65536/",
        "http://example.com:123456/",
        "http://:80/",
        "http://user@/",
        "HTTPS://example.com/kept",
        "http://user:pw@example.com:8080/kept?q#f",
        "http://[::1]:8080/kept",
        "http://127.0.0.1/kept",
        "http://example.com:65535/kept",
        "http://" + "a" * 9000 + ".com/",
    )
    assert parse_sitemap(data).urls == [
        "HTTPS://example.com/kept",
        "http://user:pw@example.com:8080/kept?q#f",
        "http://[::1]:8080/kept",
        "http://127.0.0.1/kept",
        "http://example.com:65535/kept",
    ]


def test_utf16_and_latin1_documents() -> None:
    text = f'<?xml version="1.0" encoding="UTF-16"?><urlset xmlns="{NS}"><url><loc>http://example.com/é</loc></url></urlset>'
    assert parse_sitemap(text.encode("utf-16")).urls == ["http://example.com/é"]
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><urlset><url><loc>http://example.com/\xe9</loc></url></urlset>'
    assert parse_sitemap(latin.encode("latin-1")).urls == ["http://example.com/é"]


def test_leading_whitespace_and_bom_tolerated() -> None:
    assert parse_sitemap(b"\n\n  " + urlset("http://example.com/")).urls == ["http://example.com/"]
    assert parse_sitemap(b"\xef\xbb\xbf" + urlset("http://example.com/")).urls == ["http://example.com/"]


def test_loc_across_parse_steps() -> None:
    # Past 256 KiB the document is fed in several steps: a loc cut by a step boundary is whole.
    locs = [f"http://example.com/page/{i:06d}" for i in range(20_000)]
    assert parse_sitemap(urlset(*locs)).urls == locs
    assert parse_sitemap("\n".join(locs).encode()).urls == locs


def test_gzip_detected_by_magic_bytes() -> None:
    assert parse_sitemap(
        gzip.compress(urlset("http://example.com/")), url="http://example.com/s.xml"
    ) == Sitemap(["http://example.com/"], [], None)
    # A name ending .gz means nothing; an already unzipped body is read as it is.
    assert parse_sitemap(urlset("http://example.com/"), url="http://example.com/s.xml.gz").urls == [
        "http://example.com/"
    ]


def test_gzip_members_concatenated() -> None:
    data = gzip.compress(b"http://example.com/a\n") + gzip.compress(b"http://example.com/b\n")
    assert parse_sitemap(data).urls == ["http://example.com/a", "http://example.com/b"]


def test_gzip_truncated_and_damaged() -> None:
    whole = gzip.compress(urlset(*(f"http://example.com/{i}" for i in range(1000))))
    found = parse_sitemap(whole[: len(whole) // 2])
    assert found.error == "gzip data truncated"
    assert found.urls == [f"http://example.com/{i}" for i in range(len(found.urls))]  # what was read before
    damaged = whole[:10] + b"\xff" * 20 + whole[30:]
    found = parse_sitemap(damaged)
    assert found.error is not None and found.error.startswith("gzip data damaged")


def _gzip_of_zeros(size: int) -> bytes:
    """A real gzip member of ``size`` zero bytes, built without compressing them all."""
    mib = b"\0" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)  # gzip header + one MiB
    again = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)  # one MiB from a reset state
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(mib, crc)
    final_empty_block = b"\x03\x00"
    return first + again * ((size >> 20) - 1) + final_empty_block + struct.pack("<II", crc, size & 0xFFFFFFFF)


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = _gzip_of_zeros(1 << 30)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 1_100_000
    assert zlib.decompressobj(31).decompress(bomb[:4096], 1 << 20) == b"\0" * (1 << 20)  # it is real gzip
    tracemalloc.start()
    started = time.monotonic()
    try:
        found = parse_sitemap(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == Sitemap([], [], "larger than 50 MiB uncompressed")
    assert time.monotonic() - started < 5  # about 0.3 s here: 50 MiB inflated, not 1 GiB
    assert peak < 8 * 1024 * 1024  # one step at a time, never the whole


def test_gzip_bomb_of_xml_whitespace() -> None:
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    spaces = b" " * (1 << 20)
    head = urlset("http://example.com/first")[: -len(b"</urlset>")]
    bomb = deflate.compress(head) + b"".join(deflate.compress(spaces) for _ in range(60)) + deflate.flush()
    found = parse_sitemap(bomb)
    assert found == Sitemap(["http://example.com/first"], [], "larger than 50 MiB uncompressed")


def test_plain_document_over_the_cap() -> None:
    data = urlset("http://example.com/") + b" " * (MAX_SITEMAP_BYTES + 1)
    found = parse_sitemap(data)
    assert found.error == "larger than 50 MiB uncompressed"
    assert found.urls == ["http://example.com/"]


def test_billion_laughs_refused() -> None:
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    data = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY lol0 "lol">{lol}]>'
        f'<urlset xmlns="{NS}"><url><loc>http://example.com/&lol9;</loc></url></urlset>'
    ).encode()
    started = time.monotonic()
    found = parse_sitemap(data)
    assert time.monotonic() - started < 1
    assert found == Sitemap([], [], "refused: a DOCTYPE (<!DOCTYPE urlset>); sitemaps declare no entities")


def test_external_entities_refused() -> None:
    system = (
        '<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f'<urlset xmlns="{NS}"><url><loc>http://example.com/&xxe;</loc></url></urlset>'
    )
    parameter = (
        '<!DOCTYPE urlset [<!ENTITY % dtd SYSTEM "http://127.0.0.1:1/evil.dtd"> %dtd;]>'
        f'<urlset xmlns="{NS}"><url><loc>http://example.com/</loc></url></urlset>'
    )
    external_dtd = f'<!DOCTYPE urlset SYSTEM "http://127.0.0.1:1/sitemap.dtd"><urlset xmlns="{NS}"/>'
    for data in (system, parameter, external_dtd):
        found = parse_sitemap(data.encode())
        assert found.urls == [] and found.error is not None and found.error.startswith("refused: a DOCTYPE")


def test_undefined_entity_is_an_error() -> None:
    found = parse_sitemap(urlset("http://example.com/", "http://example.com/&nbsp;"))
    assert found == Sitemap(["http://example.com/"], [], "XML error at line 2: undefined entity")


def test_html_is_not_a_sitemap() -> None:
    assert parse_sitemap(b"<!DOCTYPE html>\n<html><body>Not found</body></html>").error == (
        "not a sitemap: an HTML page (<!DOCTYPE html>)"
    )
    assert parse_sitemap(b"<html><body>Not found</body></html>") == Sitemap(
        [], [], "not a sitemap: root element <html>"
    )


def test_malformed_xml() -> None:
    data = f'<urlset xmlns="{NS}">\n<url><loc>http://example.com/a</loc></url>\n<url><loc>http://example.com/b</url>'
    assert parse_sitemap(data.encode()) == Sitemap(
        ["http://example.com/a"], [], "XML error at line 3: mismatched tag"
    )
    truncated = parse_sitemap(urlset("http://example.com/a")[:-5])
    assert truncated.urls == ["http://example.com/a"]
    assert truncated.error is not None and truncated.error.startswith("XML error at line 2:")
    assert parse_sitemap(b"<urlset><url><loc>\x00</loc></url></urlset>").error == (
        "XML error at line 1: not well-formed (invalid token)"
    )
    junk = urlset("http://example.com/a") + b"<urlset><url><loc>http://example.com/b</loc></url></urlset>"
    assert parse_sitemap(junk) == Sitemap(
        ["http://example.com/a"], [], "XML error at line 2: junk after document element"
    )


def test_url_cap() -> None:
    locs = [f"http://example.com/{i}" for i in range(MAX_URLS + 10)]
    found = parse_sitemap(urlset(*locs))
    assert found == Sitemap(locs[:MAX_URLS], [], "more than 50,000 URLs: the rest ignored")
    found = parse_sitemap("\n".join(locs).encode())
    assert found == Sitemap(locs[:MAX_URLS], [], "more than 50,000 URLs: the rest ignored")
    exactly = parse_sitemap(urlset(*locs[:MAX_URLS]))
    assert exactly == Sitemap(locs[:MAX_URLS], [], None)


def test_text_sitemap() -> None:
    data = (
        b"http://example.com/a\r\n  https://example.com/b  \n\nftp://example.com/c\n"
        b"# not a url\nhttp://example.com/\xff\xfe\nhttp://example.com/\xc3\xa9\nhttp://example.com/last"
    )
    assert parse_sitemap(data) == Sitemap(
        ["http://example.com/a", "https://example.com/b", "http://example.com/é", "http://example.com/last"],
        [],
        None,
    )
    assert parse_sitemap(gzip.compress(data)).urls == parse_sitemap(data).urls


def test_text_long_line_dropped_whole() -> None:
    # A line longer than any URL is dropped, its tail too, even where the tail looks like a URL.
    data = b"http://example.com/a\n" + b"x" * 300_000 + b"http://example.com/tail\nhttp://example.com/b\n"
    assert parse_sitemap(data).urls == ["http://example.com/a", "http://example.com/b"]


def test_text_with_no_url() -> None:
    assert parse_sitemap(b"User-agent: *\nDisallow: /\n") == Sitemap(
        [], [], "not a sitemap: text with no http(s) URL on any line"
    )
    assert parse_sitemap(b"\x00" * 1000).error == "not a sitemap: text with no http(s) URL on any line"


def test_empty_document() -> None:
    assert parse_sitemap(b"") == Sitemap([], [], "empty document")
    assert parse_sitemap(b" \r\n\t ") == Sitemap([], [], "empty document")
    assert parse_sitemap(gzip.compress(b"")) == Sitemap([], [], "empty document")


def test_rss() -> None:
    data = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://example.com/</link>'
        b"<item><title>a</title><link>http://example.com/a</link></item>"
        b"<item><link> http://example.com/b </link><guid>http://example.com/guid</guid></item></channel></rss>"
    )
    assert parse_sitemap(data) == Sitemap(["http://example.com/a", "http://example.com/b"], [], None)


def test_atom_links_resolved_against_the_feed() -> None:
    data = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><link rel="self" href="/feed"/><link href="/"/>'
        b'<entry><link href="/posts/1"/><link rel="edit" href="/edit/1"/><link rel="alternate" href="2"/></entry>'
        b'<entry><link href="https://other.example/x"/></entry></feed>'
    )
    found = parse_sitemap(data, url="http://example.com/blog/feed.xml")
    assert found == Sitemap(
        ["http://example.com/posts/1", "http://example.com/blog/2", "https://other.example/x"], [], None
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=200).map(lambda t: b"http://" + t.encode()))
def test_any_bytes_give_a_sitemap(data: bytes) -> None:
    for body in (
        data,
        b"<urlset>" + data,
        b"http://example.com/\n" + data,
        gzip.compress(data),
        b"\x1f\x8b" + data,
    ):
        found = parse_sitemap(body, url="http://example.com/")
        assert isinstance(found, Sitemap)
        for kept in found.urls + found.sitemaps:
            parts = urlsplit(kept)  # what the frontier does next must not raise either
            assert parts.scheme.lower() in ("http", "https") and parts.hostname
            assert parts.port is None or parts.port >= 0
        assert found.error is None or "\n" not in found.error
