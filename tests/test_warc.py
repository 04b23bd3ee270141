"""``--warc FILE``: every exchange archived as WARC/1.1, as received, checked with warcio's
own ``warcio check`` and ``warcio index`` (the tools an archivist runs on the file).

Scripted byte-replay servers on 127.0.0.1 send known bytes, so each response
record's block is compared with exactly what went over the wire.
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from scripted import ScriptedServer, chunked, response

from crawlsel.cli import main

warcio = pytest.importorskip("warcio", reason="pip install 'crawlsel[warc]'")
from warcio.archiveiterator import ArchiveIterator  # noqa: E402

WARCIO = str(Path(sys.executable).parent / "warcio")
OK = ("expect",)
GZIPPED = response(gzip.compress(b"zipped page"), headers=("Content-Encoding: gzip",))
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:b\r\n\r\n" + chunked(b"chunk", b"ed")


def records(path: Path) -> list:
    with open(path, "rb") as stream:
        return [
            (r.rec_type, r.rec_headers, r.raw_stream.read())
            for r in ArchiveIterator(stream, no_record_parse=True)
        ]


def warcio_accepts(path: Path) -> None:
    for command in ("check", "index"):
        done = subprocess.run([WARCIO, command, str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command == "index":
            assert done.stdout.count("\n") == len(records(path))


@pytest.mark.parametrize("name", ["out.warc.gz", "out.warc"])
def test_each_exchange_is_a_request_and_a_response_record_as_received(tmp_path: Path, name: str) -> None:
    server = ScriptedServer([[OK, ("send", GZIPPED), OK, ("send", CHUNKED)]])
    warc = tmp_path / name
    urls = [server.url("/gz"), server.url("/chunks")]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    try:
        result = CliRunner().invoke(
            main,
            [
                "fetch",
                str(tmp_path / "urls.txt"),
                "-q",
                "-c",
                "1",
                "-o",
                str(tmp_path / "out"),
                "--warc",
                str(warc),
            ],
        )
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    found = records(warc)
    assert [kind for kind, _, _ in found] == ["warcinfo", "response", "request", "response", "request"]
    assert found[0][1].get_header("WARC-Filename") == name
    by_uri = {h.get_header("WARC-Target-URI"): block for kind, h, block in found if kind == "response"}
    assert by_uri == {urls[0]: GZIPPED, urls[1]: CHUNKED}  # coded and chunked, as sent
    for kind, headers, block in found[1:]:
        assert headers.get_header("WARC-IP-Address") == "127.0.0.1"
        assert headers.protocol == "WARC/1.1"
        if kind == "request":
            assert block.startswith(b"GET /") and b"\r\nHost: 127.0.0.1:" in block
    responses = [h.get_header("WARC-Record-ID") for kind, h, _ in found if kind == "response"]
    assert [h.get_header("WARC-Concurrent-To") for kind, h, _ in found if kind == "request"] == responses
    assert (
        tmp_path / "out" / f"127.0.0.1_{server.port}" / "gz"
    ).read_bytes() == b"zipped page"  # saved decoded
    warcio_accepts(warc)


def test_a_304_to_update_is_archived_as_a_revisit(tmp_path: Path) -> None:
    page = response(b"the page", headers=('ETag: "v1"',))
    not_modified = response(b"", "304 Not Modified", ('ETag: "v1"',), length=False)
    server = ScriptedServer([[OK, ("send", page)], [OK, ("send", not_modified)]])
    urls = tmp_path / "urls.txt"
    urls.write_text(server.url("/page") + "\n")
    out = tmp_path / "out"
    try:
        server.scripts = (
            [[OK, ("send", page)], server.scripts[1]] if hasattr(server, "scripts") else server.scripts
        )
        first = CliRunner().invoke(
            main,
            ["fetch", str(urls), "-q", "-o", str(out), "--update", "--warc", str(tmp_path / "1.warc.gz")],
        )
        second = CliRunner().invoke(
            main,
            [
                "fetch",
                str(urls),
                "-q",
                "-o",
                str(out),
                "--update",
                "--warc",
                str(tmp_path / "2.warc.gz"),
                "--json",
            ],
        )
    finally:
        server.close()
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    assert json.loads(second.stdout)["unchanged"] is True
    kinds = [(kind, h.get_header("WARC-Profile")) for kind, h, _ in records(tmp_path / "2.warc.gz")]
    assert kinds == [
        ("warcinfo", None),
        ("revisit", "http://netpreserve.org/warc/1.1/revisit/server-not-modified"),
        ("request", None),
    ]
    for name in ("1.warc.gz", "2.warc.gz"):
        warcio_accepts(tmp_path / name)


def test_a_redirect_chain_is_archived_hop_by_hop(tmp_path: Path) -> None:
    hop = response(b"", "302 Found", ("Location: /final",))
    final = response(b"final page")
    server = ScriptedServer([[OK, ("send", hop), OK, ("send", final)]])
    try:
        result = CliRunner().invoke(
            main,
            ["fetch", "-", "-q", "-o", str(tmp_path / "out"), "--warc", str(tmp_path / "r.warc.gz")],
            input=server.url("/start") + "\n",
        )
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    blocks = [
        (h.get_header("WARC-Target-URI"), block)
        for kind, h, block in records(tmp_path / "r.warc.gz")
        if kind == "response"
    ]
    assert blocks == [(server.url("/start"), hop), (server.url("/final"), final)]


def test_ctrl_c_leaves_whole_records(tmp_path: Path) -> None:
    pages = [[OK, ("send", response(b"page %d" % i))] for i in range(5)]
    slow = [[OK, ("drip", response(b"x" * 2000), 0.01)]]
    server = ScriptedServer(pages + slow)
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(server.url(f"/p{i}") + "\n" for i in range(40)))
    warc = tmp_path / "c.warc.gz"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crawlsel",
            "fetch",
            str(urls),
            "-q",
            "-c",
            "4",
            "-o",
            str(tmp_path / "out"),
            "--warc",
            str(warc),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(list((tmp_path / "out").rglob("p*"))) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        server.close()
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert len(records(warc)) >= 7
    warcio_accepts(warc)


def test_an_unwritable_warc_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["fetch", "-", "--warc", str(tmp_path / "no" / "such" / "x.warc.gz")],
        input="http://127.0.0.1:9/\n",
    )
    assert result.exit_code == 2
    assert (
        f"cannot write {tmp_path / 'no' / 'such' / 'x.warc.gz'}: No such file or directory" in result.output
    )
