"""``crawl.scanner``: saved pages scanned in a forked helper process or in the loop.

The helper is a real child process; these tests drive ``Scanner`` as the frontier
does (submit, then collect until every page is back) and kill the child to show
that the pages it held are scanned in the loop instead.
"""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import crawlsel.crawl.scanner as scanner_module
from crawlsel.cli import main
from crawlsel.crawl.scanner import PageScan, Scanner, ScanRequest
from tests.test_crawl import crawl, page, saved_files, site

BASE = "http://example.com/dir/page.html"


def pages(tmp_path: Path, n: int) -> list[ScanRequest]:
    requests = []
    for i in range(n):
        path = tmp_path / f"p{i}.html"
        path.write_bytes(f'<a href="a{i}.html">x</a><img src="/i{i}.png">'.encode())
        requests.append(ScanRequest(i, str(path), BASE, "text/html", None))
    return requests


def collect_all(scanner: Scanner, count: int) -> dict[int, PageScan | None]:
    done: dict[int, PageScan | None] = {}
    while len(done) < count:
        got = scanner.collect()
        done.update(got)
        if not got and scanner.fd is not None:
            select.select([scanner.fd], [], [], 5)
    return done


def test_a_busy_helper_leaves_the_pages_beyond_its_queue_to_the_loop(tmp_path: Path) -> None:
    requests = pages(tmp_path, scanner_module.STEAL_AT + 10)
    helper = Scanner(True, helper=True)
    for request in requests:
        helper.submit(request)
    assert helper.pending == scanner_module.STEAL_AT  # the rest was scanned at once, here
    done = collect_all(helper, len(requests))
    helper.close()
    assert sorted(done) == list(range(len(requests)))
    assert done[len(requests) - 1] == PageScan(
        [f"http://example.com/dir/a{len(requests) - 1}.html"],
        [f"http://example.com/i{len(requests) - 1}.png"],
        True,
        2,
    )


def test_the_helper_process_scans_what_the_loop_would(tmp_path: Path) -> None:
    requests = pages(tmp_path, 50)
    helper = Scanner(True, helper=True)
    for request in requests:
        helper.submit(request)
    assert helper.fd is not None  # a child was started
    by_helper = collect_all(helper, 50)
    helper.close()
    inline = Scanner(True, helper=False)
    for request in requests:
        inline.submit(request)
    assert inline.fd is None
    assert by_helper == dict(inline.collect())
    assert by_helper[7] == PageScan(
        ["http://example.com/dir/a7.html"], ["http://example.com/i7.png"], True, 2
    )


def test_pages_held_by_a_dead_helper_are_scanned_in_the_loop(tmp_path: Path) -> None:
    requests = pages(tmp_path, 40)
    scanner = Scanner(False, helper=True)
    for request in requests[:20]:
        scanner.submit(request)
    os.kill(scanner._pid, signal.SIGKILL)
    os.waitpid(scanner._pid, 0)
    for request in requests[20:]:
        scanner.submit(request)
    done = collect_all(scanner, 40)
    assert scanner.fd is None  # it scans in this process from now on
    assert all(done[i] == PageScan([f"http://example.com/dir/a{i}.html"], [], True, 1) for i in range(40))


def test_unreadable_and_non_html_pages(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00\x01binary")
    scanner = Scanner(True, helper=False)
    scanner.submit(ScanRequest(1, str(tmp_path / "gone.html"), BASE, "text/html", None))
    scanner.submit(ScanRequest(2, str(tmp_path / "data.bin"), BASE, "application/octet-stream", None))
    assert dict(scanner.collect()) == {1: PageScan([], [], True, 0), 2: None}


def test_the_helper_hands_back_a_url_once_unless_at_a_lesser_depth(tmp_path: Path) -> None:
    """What the loop would drop is not sent: a URL again at the same depth or deeper, as
    the same kind; a lesser depth, or the other kind, is sent (--depth may refuse one and
    take the other). While seeds may still come, nothing is left out."""
    same = '<a href="/same.html">s</a><img src="/same.png">'
    bodies = [
        (same, 2, True),
        (same, 2, True),  # nothing new: both left out, still counted
        (same, 3, True),  # deeper: left out
        (same, 1, True),  # shallower: both again
        ('<a href="/same.png">as a link</a>', 1, True),
        (same, 1, False),  # seeds still open: all of it
    ]
    requests = []
    for i, (body, depth, drop) in enumerate(bodies):
        path = tmp_path / f"d{i}.html"
        path.write_text(body)
        requests.append(ScanRequest(i, str(path), BASE, "text/html", None, depth, drop))
    helper = Scanner(True, helper=True)
    done: dict[int, PageScan | None] = {}
    for request in requests:  # one at a time: the order the child sees them in
        helper.submit(request)
        done.update(collect_all(helper, 1))
    helper.close()
    page, image = "http://example.com/same.html", "http://example.com/same.png"
    assert [(s.links, s.requisites, s.named) for s in done.values() if s is not None] == [
        ([page], [image], 2),
        ([], [], 2),
        ([], [], 2),
        ([page], [image], 2),
        ([image], [], 1),
        ([page], [image], 2),
    ]


@pytest.mark.parametrize("cores", [1, 2])
def test_a_crawl_gives_the_same_records_scanned_in_the_loop_or_the_helper(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    monkeypatch.setattr(scanner_module, "_cores", lambda: cores)
    pages_ = {"/": page(*(f"/p{i}.html" for i in range(30)))}
    pages_.update({f"/p{i}.html": page(f"/q{i}.html", "/") for i in range(30)})
    pages_.update({f"/q{i}.html": page() for i in range(30)})
    site(server, pages_)
    status, records, out, _ = crawl(tmp_path, server.url("/"), "--ignore-robots")
    assert status == 0
    assert len(records) == 61
    assert records[server.url("/")]["links"] == 30
    assert all(records[server.url(f"/p{i}.html")]["links"] == 2 for i in range(30))
    assert len(saved_files(out)) == 61


def test_the_helper_ends_and_is_reaped_with_the_crawl(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanner_module, "_cores", lambda: 2)
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    site(server, {"/": page("/a.html"), "/a.html": page()})
    result = CliRunner().invoke(main, ["crawl", "-q", "-o", str(tmp_path / "o"), server.url("/")])
    assert result.exit_code == 0
    assert len(forked) == 1
    assert not Path(f"/proc/{forked[0]}").exists()  # ended and waited for: no zombie
