"""HTTPS on the same loop, name resolution off the loop, IPv6."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner, Result

from crawlsel.cli import main
from crawlsel.dispatcher import Dispatcher
from crawlsel.loop import EventLoop
from crawlsel.models import Config, FetchResult
from crawlsel.resolver import Resolver
from crawlsel.run import save_2xx
from crawlsel.sources import parse_url
from crawlsel.writer import PageWriter

from servers import HTTPTestServer


def crawl(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tls_server(ca: trustme.CA, *identities: str, **cert_options: object) -> HTTPTestServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(identities or ("127.0.0.1", "localhost")), **cert_options).configure_cert(context)  # type: ignore[arg-type]
    return HTTPTestServer(tls=context)


@pytest.fixture
def https(ca: trustme.CA):
    srv = tls_server(ca)
    yield srv
    srv.close()


def records(result: Result) -> dict[str, dict]:
    return {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}


def test_https_bytes_match_plain_http(
    https: HTTPTestServer, server: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    big = os.urandom(5 * 1024 * 1024)
    pages = {
        "/len": (b"content-length body", "length"),
        "/chunked": (os.urandom(70_000), "chunked"),
        "/big": (big, "length"),
    }
    for path, (body, framing) in pages.items():
        https.add(path, body, framing=framing)
        server.add(path, body, framing=framing)
    lst = tmp_path / "urls.txt"
    lst.write_text("\n".join(s.url(p) for s in (https, server) for p in pages) + "\n")
    out = tmp_path / "out"
    result = crawl("fetch", str(lst), "-o", str(out), "--cacert", cafile, "-q")
    assert result.exit_code == 0, result.stderr
    for path in pages:
        tls_copy = (out / f"127.0.0.1_{https.port}" / path[1:]).read_bytes()
        plain_copy = (out / f"127.0.0.1_{server.port}" / path[1:]).read_bytes()
        assert tls_copy == plain_copy == pages[path][0]


def test_keep_alive_over_tls_makes_at_most_per_host_handshakes(
    https: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    lst = tmp_path / "urls.txt"
    lst.write_text("\n".join(https.add(f"/{i}", b"x" * (i % 50)) for i in range(500)) + "\n")
    result = crawl(
        "fetch", str(lst), "-o", str(tmp_path / "out"), "--cacert", cafile, "--per-host", "4", "-q"
    )
    assert result.exit_code == 0, result.stderr
    assert len(https.requests) == 500
    assert 1 <= https.handshakes <= 4


def test_untrusted_certificate_fails_and_other_urls_go_on(
    https: HTTPTestServer, server: HTTPTestServer
) -> None:
    bad = https.add("/x", b"secret")
    good = server.add("/y", b"fine")
    result = crawl("get", bad, good)
    assert result.exit_code == 1
    assert result.stdout_bytes == b"fine"
    assert (
        result.stderr
        == f"crawlsel: {bad}: certificate verify failed: unable to get local issuer certificate\n"
    )


def test_insecure_skips_verification_and_says_so(https: HTTPTestServer) -> None:
    url = https.add("/x", b"unverified")
    result = crawl("get", "-k", url)
    assert result.exit_code == 0
    assert result.stdout_bytes == b"unverified"
    assert result.stderr == "crawlsel: warning: --insecure: TLS certificates are not verified\n"


def test_hostname_mismatch(ca: trustme.CA, cafile: str) -> None:
    srv = tls_server(ca, "other.example")
    try:
        url = srv.add("/x", b"x")
        result = crawl("get", "--cacert", cafile, url)
    finally:
        srv.close()
    assert result.exit_code == 1
    assert f"{url}: certificate verify failed: hostname mismatch" in result.stderr


def test_expired_certificate(ca: trustme.CA, cafile: str) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    srv = tls_server(ca, "127.0.0.1", not_before=past - datetime.timedelta(days=30), not_after=past)
    try:
        result = crawl("get", "--cacert", cafile, srv.add("/x", b"x"))
    finally:
        srv.close()
    assert result.exit_code == 1
    assert "certificate verify failed: certificate has expired" in result.stderr


def test_sni_is_sent_with_the_host_name(ca: trustme.CA, cafile: str) -> None:
    seen: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    context.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment,misc,return-value]
    srv = HTTPTestServer(tls=context)
    try:
        url = srv.add("/x", b"named").replace("127.0.0.1", "localhost")
        result = crawl("get", "--cacert", cafile, "--resolve", f"localhost:{srv.port}:127.0.0.1", url)
    finally:
        srv.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"named"
    assert seen == ["localhost"]


def test_plain_http_server_on_an_https_url(cafile: str) -> None:
    # Like nginx on its plain port: any bytes that are not HTTP get a 400 and a close.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_400() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_400, daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/x"
    try:
        result = crawl("get", "--cacert", cafile, "--connect-timeout", "2", url)
    finally:
        listener.close()
    assert result.exit_code == 1
    assert result.stderr == (
        f"crawlsel: {url}: TLS handshake failed: the server did not answer with TLS (is it a plain-HTTP port?)\n"
    )


def test_tls_server_on_an_http_url(https: HTTPTestServer) -> None:
    url = https.url("/x").replace("https://", "http://")
    result = crawl("get", "--retries", "0", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"crawlsel: {url}: ")
    # What a TLS server does with plain bytes varies: an alert, a close, or a reset.
    reasons = ("server answered with TLS", "without sending a response", "connection reset by server")
    assert any(reason in result.stderr for reason in reasons), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_tls_handshake_timeout(cafile: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        result = crawl("get", "--cacert", cafile, "--connect-timeout", "0.2", "--retries", "0", url)
    finally:
        listener.close()
    assert result.exit_code == 1
    assert result.stderr == f"crawlsel: {url}: TLS handshake timed out after 0.2 s\n"


# --- name resolution ------------------------------------------------------------


def test_slow_lookup_delays_only_its_own_host(server: HTTPTestServer, tmp_path: Path) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def fake_getaddrinfo(host: str, port: int, *args: object) -> list:
        with lock:
            calls.append(host)
        if host == "slow.test":
            time.sleep(1.5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    for i in range(3):
        server.add(f"/{i}", f"page {i}".encode())
    urls = [
        f"http://{host}:{server.port}/{i}"
        for host in ("slow.test", "fast.test", "other.test")
        for i in range(3)
    ]
    loop = EventLoop()
    finished: list[tuple[str, float]] = []
    started = time.monotonic()

    def on_result(result: FetchResult) -> None:
        assert result.ok, result.error
        finished.append((result.url, time.monotonic() - started))

    resolver = Resolver(loop, getaddrinfo=fake_getaddrinfo)
    Dispatcher(loop, Config(), save_2xx(PageWriter(tmp_path)), on_result, resolver=resolver).run(
        parse_url(u, index=i) for i, u in enumerate(urls)
    )
    loop.close()
    elapsed = time.monotonic() - started
    order = [url.split("/")[2].split(":")[0] for url, _ in finished]
    assert order[-3:] == ["slow.test"] * 3
    assert all(t < 0.5 for url, t in finished if "slow.test" not in url)
    assert elapsed < 1.5 + 0.5  # one 1.5 s lookup for all three slow URLs, not 1.5 s each
    assert sorted(calls) == ["fast.test", "other.test", "slow.test"]  # one lookup per host


def test_unknown_host_is_one_line() -> None:
    result = crawl("get", "http://nosuch.invalid/", "http://nosuch.invalid/again")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("crawlsel: http://nosuch.invalid/: could not resolve host: nosuch.invalid")
    assert len(lines) == 2


def test_resolve_pins_an_address(server: HTTPTestServer) -> None:
    server.add("/pinned", b"pinned")
    result = crawl(
        "get", "--resolve", f"pinned.test:{server.port}:127.0.0.1", f"http://pinned.test:{server.port}/pinned"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"pinned"
    assert server.requests[0].headers["host"] == f"pinned.test:{server.port}"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv6_literal() -> None:
    srv = HTTPTestServer(family=socket.AF_INET6)
    try:
        url = srv.add("/six", b"over ipv6")
        result = crawl("get", url)
        result4 = crawl("get", "-4", url)
    finally:
        srv.close()
    assert url.startswith("http://[::1]:")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"over ipv6"
    assert srv.requests[0].headers["host"] == f"[::1]:{srv.port}"
    assert result4.exit_code == 1
    assert "address family not allowed" in result4.stderr


def test_next_address_is_tried_when_the_first_refuses(server: HTTPTestServer, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    server.add("/x", b"second address")

    def two_addresses(host: str, port: int, *args: object) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dead_port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]

    loop = EventLoop()
    results: list[FetchResult] = []
    resolver = Resolver(loop, getaddrinfo=two_addresses)
    Dispatcher(loop, Config(), save_2xx(PageWriter(tmp_path)), results.append, resolver=resolver).run(
        [parse_url(f"http://multi.test:{server.port}/x")]
    )
    loop.close()
    assert results[0].ok, results[0].error
    assert (tmp_path / f"multi.test_{server.port}" / "x").read_bytes() == b"second address"


def test_redirect_from_http_to_https_and_back(
    https: HTTPTestServer, server: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    server.add(
        "/start", b"", status=301, reason="Moved Permanently", headers=[("Location", https.url("/secure"))]
    )
    https.add("/secure", b"", status=302, reason="Found", headers=[("Location", server.url("/plain"))])
    server.add("/plain", b"back on http")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["fetch", "-", "-o", str(out), "--cacert", cafile, "--json", "-q"],
        input=server.url("/start") + "\n",
    )
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["error"] is None, record
    assert record["final_url"] == server.url("/plain")
    assert (out / f"127.0.0.1_{server.port}" / "start").read_bytes() == b"back on http"
    assert len(https.requests) == 1 and https.handshakes == 1


def test_a_silent_address_is_raced_after_250_ms(server: HTTPTestServer, tmp_path: Path) -> None:
    # A listener whose accept queue is full drops SYNs: connecting to it hangs, like a
    # black-holed IPv6 route.  RFC 8305: after 250 ms the next address is tried too.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    filler = socket.create_connection(silent.getsockname())
    server.add("/x", b"raced")

    def two_addresses(host: str, port: int, *args: object) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", silent.getsockname()),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]

    loop = EventLoop()
    results: list[FetchResult] = []
    resolver = Resolver(loop, getaddrinfo=two_addresses)
    started = time.monotonic()
    try:
        Dispatcher(
            loop, Config(connect_timeout=5), save_2xx(PageWriter(tmp_path)), results.append, resolver=resolver
        ).run([parse_url(f"http://multi.test:{server.port}/x")])
    finally:
        loop.close()
        filler.close()
        silent.close()
    assert results[0].ok, results[0].error
    assert time.monotonic() - started < 2.0  # not the 5 s connect timeout
    assert (tmp_path / f"multi.test_{server.port}" / "x").read_bytes() == b"raced"
