"""``--update``: a second run asks with the validators of the first and keeps what a 304
says is unchanged (wget -N), against a real nginx and Python's http.server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from nginx import Nginx

from crawlsel.cli import main
from crawlsel.update import INDEX_NAME


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    names = [f"docs/p{i}.html" for i in range(30)]
    links = "".join(f'<a href="/{n}">{n}</a>\n' for n in names)
    (root / "index.html").write_text(f"<html><body>{links}</body></html>")
    for i, name in enumerate(names):
        (root / name).write_text(
            f"<html><body><p>{f'page {i} ' * 1000}</p><a href='/'>home</a></body></html>"
        )
    return root


@pytest.fixture
def nginx(site: Path, tmp_path: Path) -> Iterator[Nginx]:
    work = tmp_path / "nginx"
    work.mkdir()
    server = Nginx(site, work)
    yield server
    server.close()


def run(command: str, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(main, [command, "--json", "-q", *args], catch_exceptions=False)
    return result.exit_code, {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}


def test_a_second_crawl_of_an_unchanged_site_transfers_under_5_percent(
    nginx: Nginx, site: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = (nginx.base + "/", "--ignore-robots", "--update", "-o", str(out))
    code, first = run("crawl", *args)
    assert code == 0 and len(first) == 31
    first_bytes = sum(sent for _, _, sent in nginx.requests())
    saved = {p: p.read_bytes() for p in out.rglob("*.html")}
    assert (out / INDEX_NAME).is_file()
    nginx.clear()
    code, second = run("crawl", *args)
    assert code == 0
    assert sorted(second) == sorted(first)  # the links of kept pages are followed from their files
    assert {r["status"] for r in second.values()} == {304}
    assert all(r["unchanged"] and r["error"] is None for r in second.values())
    assert {p: p.read_bytes() for p in out.rglob("*.html")} == saved
    second_bytes = sum(sent for _, _, sent in nginx.requests())
    assert second_bytes < 0.05 * first_bytes, (second_bytes, first_bytes)

    changed = site / "docs" / "p3.html"
    changed.write_text("<html><body>new text</body></html>")
    os.utime(changed, (changed.stat().st_mtime + 10,) * 2)  # a new Last-Modified and ETag
    (out / f"127.0.0.1_{nginx.port}" / "docs" / "p4.html").unlink()  # lost here: fetched whole
    code, third = run("crawl", *args)
    assert code == 0
    assert third[nginx.base + "/docs/p3.html"]["status"] == 200
    assert third[nginx.base + "/docs/p4.html"]["status"] == 200
    assert (
        out / f"127.0.0.1_{nginx.port}" / "docs" / "p3.html"
    ).read_text() == "<html><body>new text</body></html>"
    assert (out / f"127.0.0.1_{nginx.port}" / "docs" / "p4.html").is_file()
    assert sum(1 for r in third.values() if r.get("unchanged")) == 29


def test_fetch_update_with_last_modified_only(site: Path, tmp_path: Path) -> None:
    # Python's http.server sends Last-Modified and answers If-Modified-Since, no ETag.
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{base}/docs/p{i}.html\n" for i in range(5)))
        out = tmp_path / "out"
        code, first = run("fetch", str(urls), "--update", "-o", str(out))
        assert code == 0 and {r["status"] for r in first.values()} == {200}
        code, second = run("fetch", str(urls), "--update", "-o", str(out))
        assert code == 0 and {r["status"] for r in second.values()} == {304}
        assert all(r["path"] == first[u]["path"] and r["unchanged"] for u, r in second.items())
        code, third = run("fetch", str(urls), "-o", str(out))  # without --update: fetched whole
        assert {r["status"] for r in third.values()} == {200}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_unwritable_index_is_one_warning_line(nginx: Nginx, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / INDEX_NAME).mkdir(parents=True)  # a folder where the index file goes
    result = subprocess.run(
        [sys.executable, "-m", "crawlsel", "fetch", "-", "--update", "-o", str(out)],
        input=f"{nginx.base}/index.html\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert f"cannot write {out / INDEX_NAME}" in result.stderr
    assert "Traceback" not in result.stderr
