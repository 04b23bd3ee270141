"""URL -> file name, and saving pages so that no partial file ever has a final name."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from crawlsel.errors import WriteError
from crawlsel.http11 import ResponseHead
from crawlsel.ordered_output import OrderedOutput
from crawlsel.run import save_2xx
from crawlsel.sources import parse_url
from crawlsel.writer import HELD_BYTES_MAX, HOLD_BYTES, MAX_NAME_BYTES, PageWriter, page_path


def rel(url: str) -> str:
    return "/".join(page_path(parse_url(url)))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/", "h/index.html"),
        ("http://H.Example.COM/Page", "h.example.com/Page"),
        ("http://h/a/b/", "h/a/b/index.html"),
        ("http://h/a/b.html", "h/a/b.html"),
        ("http://h/?q=1", "h/index.html%3Fq=1"),
        ("http://h/a?x=1&y=2", "h/a%3Fx=1&y=2"),
        ("http://h/a?", "h/a%3F"),
        ("http://h:8080/", "h_8080/index.html"),
        ("http://h:80/x", "h/x"),
        ("https://h:443/x", "h/x"),
        ("https://h:80/x", "h_80/x"),
        ("http://[::1]:8080/x", "[%3A%3A1]_8080/x"),
        # hostile paths never leave the host's folder
        ("http://h/../../etc/passwd", "h/etc/passwd"),
        ("http://h/%2e%2e/x", "h/x"),
        ("http://h/%2E%2e/%2e%2E/%2e%2e/x", "h/x"),
        ("http://h/a/./b/../c", "h/a/c"),
        ("http://h/a/..", "h/index.html"),
        ("http://h/a%2F..%2F..%2Fb", "h/a%2F..%2F..%2Fb"),
        ("http://h/a\\b", "h/a%5Cb"),
        ("http://h/..\\..\\x", "h/..%5C..%5Cx"),
        ("http://h/C:/x", "h/C%3A/x"),
        ("http://h/a%00b", "h/a%00b"),
        ("http://h/%0d%0a", "h/%0D%0A"),
        # Windows device names and trailing dots
        ("http://h/con", "h/%63on"),
        ("http://h/CON.txt", "h/%43ON.txt"),
        ("http://h/lpt1", "h/%6Cpt1"),
        ("http://h/console", "h/console"),
        ("http://h/name.", "h/name%2E"),
        # escapes decoded only where the result is a safe, unambiguous name
        ("http://h/%41%42c", "h/ABc"),
        ("http://h/caf%C3%A9", "h/café"),
        ("http://h/café", "h/café"),
        ("http://h/%FF", "h/%FF"),
        ("http://h/a%2Fb", "h/a%2Fb"),
        ("http://h/a%25b", "h/a%25b"),
        ("http://h/a%3Fb", "h/a%3Fb"),
        ("http://h/a b", "h/a%20b"),
        ('http://h/a<b>|c*"d"', "h/a%3Cb%3E%7Cc%2A%22d%22"),
    ],
)
def test_url_to_relative_path(url: str, expected: str) -> None:
    assert rel(url) == expected


def test_long_names_are_shortened_with_a_hash() -> None:
    a = rel("http://h/" + "x" * 300)
    b = rel("http://h/" + "x" * 301)
    name_a, name_b = a.split("/")[-1], b.split("/")[-1]
    assert len(name_a.encode()) == MAX_NAME_BYTES
    assert name_a != name_b
    assert name_a.startswith("x" * 150)


def test_long_non_ascii_names_are_cut_on_a_character_boundary() -> None:
    name = rel("http://h/" + "é" * 300).split("/")[-1]
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    name.encode("utf-8").decode("utf-8")


def head(status: int = 200) -> ResponseHead:
    return ResponseHead(status, "OK", "1.1", [], True, None, False)


def test_small_page_is_held_then_written_under_a_temporary_name_and_renamed(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    page = writer.open(parse_url("http://h/a/b.html"))
    assert page is not None
    page.write(b"part one, ")
    page.write(bytearray(b"part two"))  # a view of a reused buffer is copied when held
    final = tmp_path / "h" / "a" / "b.html"
    assert list(final.parent.iterdir()) == []  # no file call before the body is complete
    assert writer.held_bytes == 18
    assert page.commit() == str(final)
    assert final.read_bytes() == b"part one, part two"
    assert [p.name for p in final.parent.iterdir()] == ["b.html"]
    assert writer.held_bytes == 0


def test_large_page_streams_to_a_temporary_file(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    page = writer.open(parse_url("http://h/big"))
    assert page is not None
    page.write(b"a" * HOLD_BYTES)
    assert list((tmp_path / "h").iterdir()) == []
    page.write(b"b")
    names = [p.name for p in (tmp_path / "h").iterdir()]
    assert len(names) == 1 and names[0].endswith(".part")
    assert writer.held_bytes == 0
    assert page.commit() == str(tmp_path / "h" / "big")
    assert (tmp_path / "h" / "big").read_bytes() == b"a" * HOLD_BYTES + b"b"


def test_the_run_holds_at_most_held_bytes_max_in_memory(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    count = HELD_BYTES_MAX // HOLD_BYTES
    pages = [writer.open(parse_url(f"http://h/{i}")) for i in range(count + 1)]
    for page in pages:
        assert page is not None
        page.write(b"x" * HOLD_BYTES)
    assert writer.held_bytes == HELD_BYTES_MAX
    assert [p.name.endswith(".part") for p in (tmp_path / "h").iterdir()] == [True]  # the last one
    for page in pages:
        assert page is not None
        page.discard()
    assert writer.held_bytes == 0
    assert list((tmp_path / "h").iterdir()) == []


def test_discarded_page_leaves_nothing(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    page = writer.open(parse_url("http://h/x"))
    assert page is not None
    page.write(b"partial")
    page.discard()
    assert list((tmp_path / "h").iterdir()) == []


def test_only_2xx_is_saved(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    open_sink = save_2xx(writer)
    assert open_sink(parse_url("http://h/x"), head(404)) is None
    assert open_sink(parse_url("http://h/x"), head(301)) is None


def test_two_urls_never_share_a_file(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    paths = {
        writer.claim(parse_url(url))
        for url in ("http://h/", "http://h/index.html", "http://h/A", "http://h/a", "http://h/a")
    }
    assert paths == {
        tmp_path / "h" / "index.html",
        tmp_path / "h" / "index.html.1",
        tmp_path / "h" / "A",
        tmp_path / "h" / "a.1",
    }


def test_write_failure_is_a_write_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the output folder should be")
    with pytest.raises(WriteError, match="cannot create"):
        PageWriter(tmp_path / "not-a-folder").open(parse_url("http://h/x"))


def test_a_file_in_the_way_of_a_folder_keeps_the_rest_in_one_name(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    first = writer.open(parse_url("http://h/a"))
    assert first is not None
    first.write(b"page a")
    first.commit()
    second = writer.open(parse_url("http://h/a/b/c"))
    assert second is not None
    second.write(b"page a/b/c")
    assert second.commit() == str(tmp_path / "h" / "a%2Fb%2Fc")
    assert (tmp_path / "h" / "a").read_bytes() == b"page a"


def test_a_folder_in_the_way_of_a_file_takes_it_as_index(tmp_path: Path) -> None:
    writer = PageWriter(tmp_path)
    first = writer.open(parse_url("http://h/a/b"))
    assert first is not None
    first.commit()
    second = writer.open(parse_url("http://h/a"))
    assert second is not None
    second.write(b"page a")
    assert second.commit() == str(tmp_path / "h" / "a" / "index.html")


def test_existing_symlink_at_temp_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    writer = PageWriter(tmp_path / "out")
    page = writer.open(parse_url("http://h/x"))
    assert page is not None
    page.write(b"new")
    (tmp_path / "out" / "h" / "x").symlink_to(victim)
    page.commit()  # rename replaces the link itself
    assert victim.read_text() == "keep me"
    assert (tmp_path / "out" / "h" / "x").read_bytes() == b"new"
    assert not os.path.islink(tmp_path / "out" / "h" / "x")


def test_ordered_output_writes_in_input_order() -> None:
    stream = io.BytesIO()
    out = OrderedOutput(stream)
    targets = [parse_url(f"http://h/{i}", index=i) for i in range(4)]
    parts = {i: out.open(targets[i], head()) for i in (2, 1, 0)}
    parts[2].write(b"C")
    out.finished(2)
    parts[1].write(b"B")
    parts[0].write(b"A")
    assert stream.getvalue() == b"A"  # index 0 streams straight through
    out.finished(1)
    assert stream.getvalue() == b"A"
    out.finished(0)
    assert stream.getvalue() == b"ABC"
    out.finished(3)  # failed before any body: the order still moves on
    assert stream.getvalue() == b"ABC"
