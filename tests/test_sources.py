"""URL lists: lazy reading, validation, normalisation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from crawlsel.errors import InvalidURL, SourceError
from crawlsel.models import InvalidLine, Target
from crawlsel.sources import parse_url, read_targets


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def test_a_million_line_list_is_read_lazily() -> None:
    data = b"".join(b"http://h/%d\n" % i for i in range(1_000_000))
    stream = CountingStream(data)
    records = read_targets(["-"], stdin=stream)
    first = next(records)
    assert isinstance(first, Target) and first.url == "http://h/0"
    assert stream.bytes_read < 100


def test_blank_lines_comments_bom_crlf_and_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfhttp://h/a\r\n\r\n# comment\r\n   \r\n  http://h/b  \r\nhttp://h/c")
    records = list(read_targets([str(path)]))
    assert [r.url for r in records if isinstance(r, Target)] == ["http://h/a", "http://h/b", "http://h/c"]
    assert [r.line for r in records] == [1, 5, 6]
    assert [r.index for r in records] == [0, 1, 2]


def test_invalid_lines_carry_their_line_number(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(
        b"http://h/a\nnope\n\xff\xfe\nhttp://h/b\n" + b"http://h/" + b"x" * 70000 + b"\nhttp://h/c\n"
    )
    records = list(read_targets([str(path)]))
    kinds = [(type(r).__name__, r.line) for r in records]
    assert kinds == [
        ("Target", 1),
        ("InvalidLine", 2),
        ("InvalidLine", 3),
        ("Target", 4),
        ("InvalidLine", 5),
        ("Target", 6),
    ]
    reasons = [r.reason for r in records if isinstance(r, InvalidLine)]
    assert reasons == ["not an absolute http(s) URL", "not valid UTF-8", "line longer than 64 KiB"]


def test_several_sources_in_order(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("http://h/1\n")
    (tmp_path / "b").write_text("http://h/2\n")
    records = list(
        read_targets([str(tmp_path / "a"), "-", str(tmp_path / "b")], stdin=io.BytesIO(b"http://h/s\n"))
    )
    assert [r.url for r in records] == ["http://h/1", "http://h/s", "http://h/2"]
    assert [r.index for r in records] == [0, 1, 2]


def test_missing_source_fails_before_the_first_record(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("http://h/1\n")
    with pytest.raises(SourceError, match="no such file"):
        next(read_targets([str(tmp_path / "a"), str(tmp_path / "missing")]))


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "target"),
    [
        ("http://h", "http", "h", 80, "/"),
        ("HTTPS://Example.COM:8443/A?b=C#frag", "https", "example.com", 8443, "/A?b=C"),
        ("http://h/a b?c d", "http", "h", 80, "/a%20b?c%20d"),
        ("http://h/é", "http", "h", 80, "/%C3%A9"),
        ("http://bücher.example/", "http", "xn--bcher-kva.example", 80, "/"),
        ("http://[::1]:81/", "http", "::1", 81, "/"),
        ("http://h/?", "http", "h", 80, "/?"),
        # RFC 3986 6.2.2: unreserved escapes decoded (then "%2e%2e" is ".."), dots removed.
        ("http://h/%2e%2e/", "http", "h", 80, "/"),
        ("http://h/../pages/p001.html", "http", "h", 80, "/pages/p001.html"),
        ("http://h/pages/./p001.html", "http", "h", 80, "/pages/p001.html"),
        ("http://h/pages/../pages/p001.html", "http", "h", 80, "/pages/p001.html"),
        ("http://h/pages/%70001.html", "http", "h", 80, "/pages/p001.html"),
        ("http://h/a/b/..?x=/./", "http", "h", 80, "/a/?x=/./"),
        ("http://h/%7euser/%2fx%3f?q=%41%2b", "http", "h", 80, "/~user/%2Fx%3F?q=A%2B"),
        ("http://h/.hidden/p", "http", "h", 80, "/.hidden/p"),
    ],
)
def test_parse_url(url: str, scheme: str, host: str, port: int, target: str) -> None:
    t = parse_url(url)
    assert (t.scheme, t.host, t.port, t.target) == (scheme, host, port, target)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("example.com/page", "not an absolute http(s) URL"),
        ("/page", "not an absolute http(s) URL"),
        ("ftp://h/x", "unsupported scheme 'ftp'"),
        ("file:///etc/passwd", "not an absolute http(s) URL"),
        ("http://h:abc/", "invalid port"),
        ("http://h:0/", "invalid port 0"),
        ("http://a@b:c@d/", "user names and passwords"),
        ("http://h/\x00", "control characters"),
        ("http://h/a\rb", "control characters"),
        ("http://[::1/", "malformed URL"),
        ("http://bad host/", "spaces in the host name"),
        ("http:///path", "not an absolute http(s) URL"),
    ],
)
def test_parse_url_rejects(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://h",
        "http://h?q=1",
        "http://127.0.0.1:8080/p1.html",
        "https://example.com/a/b?x=1&y=2",
        "http://h:80/x",
        "http://h/?",
        "http://a-b.c-d.example/x;y=1/z:w@v",
    ],
)
def test_the_fast_path_agrees_with_the_full_parser(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import crawlsel.urls as urls

    fast = parse_url(url)
    monkeypatch.setattr(urls, "_PLAIN_URL", re.compile(r"(?!)"))
    assert parse_url(url) == fast
