"""One URL normalisation (crawlsel.urls), and that fetch, get and redirects all use it.

The unit cases come from RFC 3986 (5.2.4, 5.4, 6.2.2); the end-to-end ones send
real requests to a loopback server and look at what it received and what was saved.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest
from click.testing import CliRunner
from helpers import fetch_records

from crawlsel.cli import main
from crawlsel.urls import normalize, remove_dot_segments

from servers import HTTPTestServer

BASE = "http://a/b/c/d;p?q"

# RFC 3986 5.4.1 and 5.4.2: reference, resolved against BASE.
RFC3986_EXAMPLES = [
    ("g:h", None),  # another scheme: not an http(s) URL
    ("g", "http://a/b/c/g"),
    ("./g", "http://a/b/c/g"),
    ("g/", "http://a/b/c/g/"),
    ("/g", "http://a/g"),
    ("//g", "http://g/"),
    ("?y", "http://a/b/c/d;p?y"),
    ("g?y", "http://a/b/c/g?y"),
    ("#s", "http://a/b/c/d;p?q"),
    ("g#s", "http://a/b/c/g"),
    ("g?y#s", "http://a/b/c/g?y"),
    (";x", "http://a/b/c/;x"),
    ("g;x", "http://a/b/c/g;x"),
    ("g;x?y#s", "http://a/b/c/g;x?y"),
    ("", "http://a/b/c/d;p?q"),
    (".", "http://a/b/c/"),
    ("./", "http://a/b/c/"),
    ("..", "http://a/b/"),
    ("../", "http://a/b/"),
    ("../g", "http://a/b/g"),
    ("../..", "http://a/"),
    ("../../", "http://a/"),
    ("../../g", "http://a/g"),
    # 5.4.2, abnormal examples
    ("../../../g", "http://a/g"),
    ("../../../../g", "http://a/g"),
    ("/./g", "http://a/g"),
    ("/../g", "http://a/g"),
    ("g.", "http://a/b/c/g."),
    (".g", "http://a/b/c/.g"),
    ("g..", "http://a/b/c/g.."),
    ("..g", "http://a/b/c/..g"),
    ("./../g", "http://a/b/g"),
    ("./g/.", "http://a/b/c/g/"),
    ("g/./h", "http://a/b/c/g/h"),
    ("g/../h", "http://a/b/c/h"),
    ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
    ("g;x=1/../y", "http://a/b/c/y"),
    ("g?y/./x", "http://a/b/c/g?y/./x"),
    ("g?y/../x", "http://a/b/c/g?y/../x"),
    ("g#s/./x", "http://a/b/c/g"),
    ("g#s/../x", "http://a/b/c/g"),
]


@pytest.mark.parametrize(("reference", "expected"), [e for e in RFC3986_EXAMPLES if e[1]])
def test_rfc3986_reference_resolution_examples(reference: str, expected: str) -> None:
    # Redirects resolve Location with urljoin, then normalise: together they must give 5.4's answers.
    assert normalize(urljoin(BASE, reference)) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # RFC 3986 5.2.4's two worked examples, and the edges of the algorithm.
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/", "/"),
        ("/..", "/"),
        ("/.", "/"),
        ("/a/..", "/"),
        ("/a/.", "/a/"),
        ("/a/b/..", "/a/"),
        ("/a//../b", "/a/b"),
        ("/.../x", "/.../x"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        # RFC 3986 6.2.2.1 case, 6.2.2.2 percent-encoding, 6.2.2.3 dots, 6.2.3 scheme-based.
        ("HTTP://Example.COM/", "http://example.com/"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:80/", "http://example.com/"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("http://example.com/%7Euser", "http://example.com/~user"),
        ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/x#frag", "http://example.com/x"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("http://[::1]:80/", "http://[::1]/"),
    ],
)
def test_normalize(spelling: str, canonical: str) -> None:
    assert normalize(spelling) == canonical
    assert normalize(canonical) == canonical  # idempotent


# --- end to end: what the server receives, what is saved ------------------------------


SPELLINGS = [
    "/pages/p001.html",
    "/pages/./p001.html",
    "/pages/../pages/p001.html",
    "/pages/%70001.html",
    "/x/../pages/p001.html",
]


def test_fetch_fetches_one_resource_once_however_it_is_spelled(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    server.add("/pages/p001.html", b"page one")
    status, records, out = fetch_records(tmp_path, [server.url(path) for path in SPELLINGS])
    assert status == 0
    assert [r.target for r in server.requests] == ["/pages/p001.html"]
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["p001.html"]
    assert len(records) == 1  # the others are duplicates, skipped as a URL listed twice is


def test_get_removes_dot_segments_before_sending(server: HTTPTestServer) -> None:
    server.add("/pages/p001.html", b"page one")
    result = CliRunner().invoke(main, ["get", server.url("/../pages/p001.html")], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout_bytes == b"page one"
    assert [r.target for r in server.requests] == ["/pages/p001.html"]


def test_redirect_targets_are_normalised(tmp_path: Path, server: HTTPTestServer) -> None:
    moved = [("Location", "../new/./%61.html")]
    server.add("/old/a.html", b"", status=301, reason="Moved Permanently", headers=moved)
    server.add("/new/a.html", b"moved here")
    status, records, out = fetch_records(tmp_path, [server.url("/old/a.html")])
    assert status == 0
    assert [r.target for r in server.requests] == ["/old/a.html", "/new/a.html"]
    assert records[0]["final_url"] == server.url("/new/a.html")
    assert Path(records[0]["path"]).read_bytes() == b"moved here"
