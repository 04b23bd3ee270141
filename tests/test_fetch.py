"""End to end: ``crawlsel fetch`` and ``crawlsel get`` against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from click.testing import CliRunner, Result

from crawlsel.cli import main
from crawlsel.decoding import accept_encoding

from servers import HTTPTestServer


def crawl(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write_list(tmp_path: Path, urls: list[str], name: str = "urls.txt") -> str:
    path = tmp_path / name
    path.write_text("\n".join(urls) + "\n")
    return str(path)


def saved(out: Path, server: HTTPTestServer, relative: str) -> bytes:
    return (out / f"127.0.0.1_{server.port}" / relative).read_bytes()


BINARY = bytes(range(256)) * 40 + b"\xff\xfe\x00"
TRICKY = b"<html>\r\n\r\nnot a header\r\n\r\n</html>\r\n\r\n"


def test_exact_bytes_for_every_framing(server: HTTPTestServer, tmp_path: Path) -> None:
    big = os.urandom(300_000)
    urls = [
        server.add("/length.html", b"<p>length</p>"),
        server.add("/chunked.html", big, framing="chunked", chunk_size=7000),
        server.add("/close.html", b"close-delimited body", framing="close"),
        server.add("/binary.bin", BINARY),
        server.add("/tricky.html", TRICKY, framing="chunked", chunk_size=5),
        server.add("/empty", b""),
    ]
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, urls), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    assert saved(out, server, "length.html") == b"<p>length</p>"
    assert saved(out, server, "chunked.html") == big
    assert saved(out, server, "close.html") == b"close-delimited body"
    assert saved(out, server, "binary.bin") == BINARY
    assert saved(out, server, "tricky.html") == TRICKY
    assert saved(out, server, "empty") == b""
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_keep_alive_reuses_at_most_per_host_connections(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/p{i}.html", f"page {i}".encode()) for i in range(200)]
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, urls), "-o", str(out), "--per-host", "4", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(server.requests) == 200
    assert 1 <= server.connections <= 4
    for i in (0, 57, 199):
        assert saved(out, server, f"p{i}.html") == f"page {i}".encode()


def test_no_keep_alive_uses_one_connection_per_request_and_never_writes_after_close(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.add(f"/p{i}", f"page {i}".encode()) for i in range(20)]
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, urls), "-o", str(out), "--no-keep-alive", "-q")
    assert result.exit_code == 0, result.stderr
    assert server.connections == 20
    assert set(server.requests_per_connection().values()) == {1}
    assert all(r.headers["connection"] == "close" for r in server.requests)
    time.sleep(0.1)  # let the server threads finish reading to EOF
    assert server.late_bytes == []


def test_pipelined_responses_in_one_recv_are_split_at_the_right_byte(make_server, tmp_path: Path) -> None:
    server = make_server(batch=2)
    a = server.add("/a.html", b"first\r\n\r\nHTTP/1.1 200 OK\r\n")
    b = server.add("/b.html", b"second body", framing="chunked", chunk_size=3)
    out = tmp_path / "out"
    result = crawl(
        "fetch", write_list(tmp_path, [a, b]), "-o", str(out), "--per-host", "1", "--pipeline", "2", "-q"
    )
    assert result.exit_code == 0, result.stderr
    assert server.connections == 1
    assert saved(out, server, "a.html") == b"first\r\n\r\nHTTP/1.1 200 OK\r\n"
    assert saved(out, server, "b.html") == b"second body"


def test_requests_topping_up_a_pipelined_connection_leave_in_one_send(make_server, tmp_path: Path) -> None:
    server = make_server(batch=3)  # three answers in one write: the client reads them in one recv
    urls = [server.add(f"/p{i}", f"page {i}".encode()) for i in range(9)]
    out = tmp_path / "out"
    result = crawl(
        "fetch",
        write_list(tmp_path, urls),
        "-o",
        str(out),
        "--per-host",
        "1",
        "--pipeline",
        "3",
        "-q",
        "--trace",
    )
    assert result.exit_code == 0, result.stderr
    assert server.connections == 1
    lines = result.stderr.splitlines()
    completing = [line for line in lines if "response complete" in line]
    assert [line.count("response complete") for line in completing] == [3, 3, 3]
    assert all(line.endswith("response complete -> idle") for line in completing)  # said once a turn
    # The three requests that replace three completions go out in one send, as
    # the first three did when the connection opened (all requests are 420 B / 3
    # with "Accept-Encoding: gzip, deflate"; br and zstd add theirs when installed).
    size = 420 + 3 * (len(accept_encoding()) - len("gzip, deflate"))
    sends = [line.rsplit(" send ", 1)[1] for line in lines if " send " in line]
    assert sends == [f"{size} B"] * 3
    assert saved(out, server, "p8") == b"page 8"
    # The pages of a turn are saved after its events: the next requests leave first.
    events = [
        "send" if " send " in line else "recv" if " recv " in line else "save"
        for line in lines
        if " send " in line or " recv " in line or "after the events: GET" in line
    ]
    assert events == ["send"] + ["recv", "send", "save", "save", "save"] * 2 + ["recv"] + ["save"] * 3


def test_get_keep_alive_returns_on_framing_not_on_server_close(make_server) -> None:
    server = make_server(idle_timeout=30.0)
    urls = [server.add(f"/{n}", f"<{n}>".encode()) for n in ("a", "b", "c")]
    started = time.monotonic()
    result = crawl("get", "--keep-alive", *urls)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"<a><b><c>"
    assert server.connections == 1
    assert elapsed < 1.0  # the server would keep the connection open for 30 s


def test_get_without_keep_alive_uses_a_connection_per_url_in_input_order(server: HTTPTestServer) -> None:
    slow = server.add("/slow", b"1-slow ", delay=0.2)
    fast = server.add("/fast", b"2-fast")
    result = crawl("get", slow, fast)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"1-slow 2-fast"
    assert server.connections == 2


def test_get_prints_binary_bytes_exactly(server: HTTPTestServer) -> None:
    url = server.add("/bin", BINARY, framing="chunked", chunk_size=333)
    result = crawl("get", url)
    assert result.stdout_bytes == BINARY


def test_invalid_lines_are_reported_with_line_numbers_and_the_rest_saved(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    good = server.add("/good.html", b"good")
    lines = [
        "# a comment",
        "",
        good,
        "not a url",
        "ftp://example.invalid/file",
        "http://bad host/",
        "http://h:99999/",
    ]
    source = write_list(tmp_path, lines)
    out = tmp_path / "out"
    result = crawl("fetch", source, "-o", str(out), "--json")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    errors = {r["url"]: r["error"] for r in records if r["error"]}
    assert errors["not a url"] == f"{source}, line 4: not an absolute http(s) URL"
    assert "line 5: unsupported scheme 'ftp'" in errors["ftp://example.invalid/file"]
    assert "line 6:" in errors["http://bad host/"]
    assert "line 7: invalid port" in errors["http://h:99999/"]
    assert all(r["error_kind"] == "invalid_url" for r in records if r["error"])
    assert saved(out, server, "good.html") == b"good"
    assert "\n  not a url: " in result.stderr


JSON_FIELDS = {
    "url",
    "final_url",
    "status",
    "path",
    "bytes",
    "elapsed_ms",
    "attempts",
    "skipped",
    "skip_reason",
    "error",
    "error_kind",
}


def test_json_records_and_exit_status(server: HTTPTestServer, tmp_path: Path) -> None:
    ok = server.add("/ok.html", b"12345")
    missing = server.url("/missing")
    moved = server.add(
        "/moved", b"", status=301, reason="Moved Permanently", headers=[("Location", "/ok.html")]
    )
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, [ok, missing, moved]), "-o", str(out), "--json")
    assert result.exit_code == 1
    records = {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert all(set(r) == JSON_FIELDS for r in records.values())
    assert records[ok]["status"] == 200
    assert records[ok]["bytes"] == 5
    assert records[ok]["error"] is None
    assert records[ok]["attempts"] == 1
    assert Path(records[ok]["path"]).read_bytes() == b"12345"
    assert records[missing]["status"] == 404
    assert records[missing]["path"] is None
    assert records[missing]["error"] == "HTTP 404 Not Found"
    assert records[missing]["error_kind"] == "http"
    assert not (out / f"127.0.0.1_{server.port}" / "missing").exists()
    # a redirect is followed and saved under the name of the URL from the list
    assert records[moved]["status"] == 200
    assert records[moved]["final_url"] == ok
    assert Path(records[moved]["path"]) == out / f"127.0.0.1_{server.port}" / "moved"
    assert Path(records[moved]["path"]).read_bytes() == b"12345"


def test_all_saved_exits_zero_and_prints_a_plain_summary(server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add("/", b"home")
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, [url]), "-o", str(out))
    assert result.exit_code == 0
    assert saved(out, server, "index.html") == b"home"
    assert result.stderr.startswith("1 saved (4 B), 0 failed")
    assert "\x1b" not in result.stderr


def test_unreadable_source_is_a_usage_error(tmp_path: Path) -> None:
    result = crawl("fetch", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2
    assert result.stderr == f"crawlsel: error: {tmp_path / 'nope.txt'}: no such file\n"


def test_urls_from_stdin(server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add("/stdin.html", b"from stdin")
    out = tmp_path / "out"
    result = crawl("fetch", "-", "-o", str(out), "-q", input=url + "\n")
    assert result.exit_code == 0
    assert saved(out, server, "stdin.html") == b"from stdin"


def test_request_on_a_connection_the_server_dropped_is_sent_again(make_server, tmp_path: Path) -> None:
    server = make_server()
    server.drop_after = 1  # answers one request per connection, then closes on the next
    urls = [server.add(f"/{i}", f"body {i}".encode()) for i in range(4)]
    out = tmp_path / "out"
    result = crawl("fetch", write_list(tmp_path, urls), "-o", str(out), "--per-host", "1", "-q")
    assert result.exit_code == 0, result.stderr
    for i in range(4):
        assert saved(out, server, str(i)) == f"body {i}".encode()
    assert server.connections == 4


def test_request_headers(server: HTTPTestServer) -> None:
    url = server.add("/h", b"ok")
    result = crawl("get", url, "-A", "test-agent/1", "-H", "X-Token: abc", "-H", "Accept:")
    assert result.exit_code == 0
    request = server.requests[0]
    assert request.raw.startswith(f"GET /h HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
    assert request.headers["user-agent"] == "test-agent/1"
    assert request.headers["x-token"] == "abc"
    assert request.headers["accept-encoding"].startswith("gzip, deflate")  # br, zstd if installed
    assert "accept" not in request.headers


def test_bad_header_option_is_a_usage_error() -> None:
    result = crawl("get", "http://127.0.0.1:1/", "-H", "no colon")
    assert result.exit_code == 2


def test_stalled_server_times_out_and_others_finish(server: HTTPTestServer, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    stalled = f"http://127.0.0.1:{listener.getsockname()[1]}/stall"
    good = server.add("/good", b"fine")
    out = tmp_path / "out"
    result = crawl(
        "fetch",
        write_list(tmp_path, [stalled, good]),
        "-o",
        str(out),
        "--json",
        "--read-timeout",
        "0.2",
        "--retry-delay",
        "0.01",
    )
    listener.close()
    for sock in accepted:
        sock.close()
    assert result.exit_code == 1
    records = {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert records[stalled]["error_kind"] == "timeout"
    assert records[stalled]["error"] == "no data from server for 0.2 s"
    assert records[stalled]["attempts"] == 3  # timeouts are retried twice by default
    assert records[good]["error"] is None


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    result = crawl("get", "--retries", "0", f"http://127.0.0.1:{port}/")
    assert result.exit_code == 1
    assert result.stderr == (
        f"crawlsel: http://127.0.0.1:{port}/: could not connect to 127.0.0.1:{port}: Connection refused\n"
    )
