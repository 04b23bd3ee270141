"""Proxies: curl's environment rules, and fetching through real squid, microsocks and danted."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner, Result
from daemons import Daemon, SSHDynamic, closed_port, dante, microsocks, squid
from scripted import ScriptedServer

from crawlsel.cli import main
from crawlsel.proxy import Proxy, parse_proxy, settings

from servers import HTTPTestServer

SECRET = "s3cret-Pa55"


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # Proxy variables of the machine running the tests never leak in.
    clean: dict[str, str | None] = {
        name: None
        for name in (
            "http_proxy",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
        )
    }
    clean.update(env or {})
    return CliRunner().invoke(main, list(args), env=clean, catch_exceptions=False)


def records(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def fetch(tmp_path: Path, urls: list[str], *args: str, env: dict[str, str | None] | None = None) -> Result:
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    return run("fetch", str(source), "-o", str(tmp_path / "out"), "--json", "-q", *args, env=env)


# --- configuration: curl's rules ---------------------------------------------------


def test_environment_as_curl_reads_it() -> None:
    env = {
        "HTTP_PROXY": "http://cgi-set:1",
        "https_proxy": "http://tls:3128",
        "all_proxy": "socks5h://all:1080",
    }
    found = settings(None, None, env)
    assert found is not None
    assert found.http == Proxy("socks5h", "all", 1080)  # HTTP_PROXY is ignored (httpoxy)
    assert found.https == Proxy("http", "tls", 3128)
    found = settings(None, None, {"http_proxy": "plain:8080", "HTTPS_PROXY": "http://u:p%40ss@up:1"})
    assert found is not None and found.http == Proxy("http", "plain", 8080)
    assert found.https == Proxy("http", "up", 1, "u", "p@ss")
    assert settings(None, None, {"HTTP_PROXY": "http://x:1"}) is None
    assert settings("", None, {"http_proxy": "http://x:1"}) is None  # -x "" turns proxies off
    assert parse_proxy("socks5://h").port == 1080  # curl's default port


def test_no_proxy_names_addresses_ranges_and_star() -> None:
    env = {"http_proxy": "http://p:1", "no_proxy": "example.com, .internal,10.0.0.0/8,::1,192.168.1.5"}
    found = settings(None, None, env)
    assert found is not None
    for host in (
        "example.com",
        "www.example.com",
        "a.internal",
        "10.2.3.4",
        "::1",
        "192.168.1.5",
        "EXAMPLE.COM.",
    ):
        assert found.for_origin("http", host) is None, host
    for host in ("notexample.com", "example.org", "11.0.0.1", "192.168.1.6", "internal.org"):
        assert found.for_origin("http", host) == Proxy("http", "p", 1), host
    star = settings(None, None, {**env, "no_proxy": "*"})
    assert star is not None and star.for_origin("http", "anything") is None
    # --noproxy replaces no_proxy, and applies to --proxy too.
    replaced = settings("http://q:2", "other.org", env)
    assert replaced is not None
    assert replaced.for_origin("http", "example.com") == Proxy("http", "q", 2)
    assert replaced.for_origin("https", "x.other.org") is None


def test_bad_proxy_urls_are_usage_errors_that_hide_the_password() -> None:
    for bad, said in (
        (f"ftp://user:{SECRET}@h:1", "unsupported proxy scheme 'ftp'"),
        (f"https://user:{SECRET}@h:1", "HTTPS proxies"),
        (f"http://user:{SECRET}@h:port", "invalid proxy URL"),
    ):
        result = run("get", "-x", bad, "http://127.0.0.1:1/")
        assert result.exit_code == 2
        assert said in result.stderr
        assert SECRET not in result.stderr
        assert "***@h" in result.stderr


# --- squid: forwarding and CONNECT -------------------------------------------------


@pytest.fixture(scope="module")
def open_squid() -> Iterator[Daemon]:
    proxy = squid()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def auth_squid() -> Iterator[Daemon]:
    proxy = squid(users={"alice": SECRET})
    yield proxy
    proxy.close()


@pytest.fixture
def https_localhost(ca: trustme.CA) -> Iterator[HTTPTestServer]:
    """A TLS origin whose certificate names only "localhost": verifying it against
    the proxy's address (127.0.0.1) would fail."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    srv = HTTPTestServer(tls=context)
    yield srv
    srv.close()


def test_http_urls_go_through_squid_in_absolute_form_over_one_kept_alive_connection(
    open_squid: Daemon, server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.add(f"/page{i}", f"page {i}".encode() * 100) for i in range(30)]
    result = fetch(tmp_path, urls, "-x", f"http://127.0.0.1:{open_squid.port}", "--per-host", "1", "--trace")
    assert result.exit_code == 0, result.stderr
    assert len(server.requests) == 30
    assert all("squid" in request.headers["via"] for request in server.requests)
    for i in range(30):
        saved = tmp_path / "out" / f"127.0.0.1_{server.port}" / f"page{i}"
        assert saved.read_bytes() == f"page {i}".encode() * 100
    # One connection to the proxy carried all thirty requests.
    assert result.stderr.count(f"connect 127.0.0.1:{open_squid.port} (in progress)") == 1
    assert result.stderr.count("reused for GET http://127.0.0.1") == 29


def test_credentials_go_to_the_proxy_only_and_are_never_printed(
    auth_squid: Daemon, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add("/secret-page", b"through the proxy")
    result = fetch(tmp_path, [url], "-x", f"http://alice:{SECRET}@127.0.0.1:{auth_squid.port}", "--trace")
    assert result.exit_code == 0, result.stderr
    assert (
        tmp_path / "out" / f"127.0.0.1_{server.port}" / "secret-page"
    ).read_bytes() == b"through the proxy"
    (request,) = server.requests
    assert "proxy-authorization" not in request.headers
    assert SECRET not in result.stdout + result.stderr


def test_missing_or_wrong_credentials_are_proxy_errors(
    auth_squid: Daemon, server: HTTPTestServer, https_localhost: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    plain = server.add("/p", b"x")
    tls = https_localhost.add("/t", b"y").replace("127.0.0.1", "localhost")
    shown = f"http://127.0.0.1:{auth_squid.port}"
    for proxy, said in (
        (shown, f"proxy {shown} requires authentication (407)"),
        (
            f"http://alice:wrong-{SECRET}@127.0.0.1:{auth_squid.port}",
            f"proxy {shown} refused the credentials",
        ),
    ):
        result = fetch(tmp_path, [plain, tls], "-x", proxy, "--cacert", cafile, "--trace")
        assert result.exit_code == 1
        found = {r["url"]: r for r in records(result)}
        for url in (plain, tls):
            assert found[url]["error_kind"] == "proxy", found[url]
            assert found[url]["error"].startswith(said), found[url]
        assert SECRET not in result.stdout + result.stderr
    assert server.requests == [] and https_localhost.requests == []


def test_https_through_connect_verifies_the_origin_name(
    auth_squid: Daemon, https_localhost: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    urls = [
        https_localhost.add(f"/s{i}", b"secure %d" % i).replace("127.0.0.1", "localhost") for i in range(5)
    ]
    proxy = f"http://alice:{SECRET}@127.0.0.1:{auth_squid.port}"
    result = fetch(tmp_path, urls, "-x", proxy, "--cacert", cafile, "--per-host", "1", "--trace")
    assert result.exit_code == 0, result.stderr
    for i in range(5):
        assert (
            tmp_path / "out" / f"localhost_{https_localhost.port}" / f"s{i}"
        ).read_bytes() == b"secure %d" % i
    assert https_localhost.handshakes == 1  # one tunnel, kept alive
    assert "CONNECT tunnel open through http://127.0.0.1:" in result.stderr
    assert all("proxy-authorization" not in r.headers for r in https_localhost.requests)
    assert SECRET not in result.stdout + result.stderr
    # The same origin under a name its certificate does not carry: a TLS error of the origin.
    other = https_localhost.add("/o", b"o")
    result = fetch(tmp_path, [other], "-x", proxy, "--cacert", cafile)
    (record,) = records(result)
    assert record["error_kind"] == "tls", record
    assert "127.0.0.1" in record["error"] and "proxy" not in record["error"]


def test_connect_refused_by_squid_names_the_proxy(open_squid: Daemon, tmp_path: Path) -> None:
    port = closed_port()
    shown = f"http://127.0.0.1:{open_squid.port}"
    result = fetch(tmp_path, ["https://forbidden.test/", f"https://127.0.0.1:{port}/"], "-x", shown)
    assert result.exit_code == 1
    found = {r["url"]: r for r in records(result)}
    assert (
        found["https://forbidden.test/"]["error"]
        == f"proxy {shown}: answered CONNECT forbidden.test:443 with 403 Forbidden"
    )
    unreachable = found[f"https://127.0.0.1:{port}/"]
    assert unreachable["error_kind"] == "proxy"
    assert found["https://forbidden.test/"]["attempts"] == unreachable["attempts"] == 1
    assert unreachable["error"].startswith(f"proxy {shown}: answered CONNECT 127.0.0.1:{port} with 503")


def test_a_proxy_that_refuses_connections(server: HTTPTestServer, tmp_path: Path) -> None:
    port = closed_port()
    url = server.add("/x", b"x")
    result = run("get", "-x", f"http://alice:{SECRET}@127.0.0.1:{port}", "--retries", "0", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"crawlsel: {url}: proxy http://127.0.0.1:{port}: ")
    assert "refused" in result.stderr and SECRET not in result.stderr
    assert result.stderr.count("\n") == 1
    assert server.requests == []
    # Retried as a refused connection to an origin is; a 407 or a denied CONNECT is not.
    (record,) = records(
        fetch(tmp_path, [url], "-x", f"http://127.0.0.1:{port}", "--retries", "1", "--retry-delay", "0")
    )
    assert (record["error_kind"], record["attempts"]) == ("proxy", 2)


def test_a_proxy_that_closes_during_the_connect_handshake(tmp_path: Path) -> None:
    closer = ScriptedServer([[("expect",), ("close",)]])
    try:
        result = run("get", "-x", closer.url().rstrip("/"), "--retries", "0", "https://example.test/")
    finally:
        closer.close()
    assert result.exit_code == 1
    assert result.stderr == (
        f"crawlsel: https://example.test/: proxy http://127.0.0.1:{closer.port}: "
        "closed the connection during the CONNECT handshake\n"
    )
    assert closer.requests[0].startswith(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n")


def test_environment_and_no_proxy_through_the_command(
    open_squid: Daemon, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add("/env", b"e")
    dead = f"http://127.0.0.1:{closed_port()}"
    # http_proxy is used ...
    result = fetch(tmp_path, [url], env={"http_proxy": f"http://127.0.0.1:{open_squid.port}"})
    assert result.exit_code == 0, result.stderr
    assert "via" in server.requests[-1].headers
    # ... HTTP_PROXY is not, and no_proxy / --noproxy bypass a dead proxy.
    assert fetch(tmp_path, [url], env={"HTTP_PROXY": dead}).exit_code == 0
    assert fetch(tmp_path, [url], env={"http_proxy": dead, "no_proxy": "127.0.0.0/8"}).exit_code == 0
    assert fetch(tmp_path, [url], "-x", dead, "--noproxy", "127.0.0.1").exit_code == 0
    assert "via" not in server.requests[-1].headers
    (record,) = records(fetch(tmp_path, [url], env={"all_proxy": dead}))
    assert record["error_kind"] == "proxy"


# --- SOCKS ----------------------------------------------------------------------


def test_socks5h_and_socks5_through_microsocks(server: HTTPTestServer, tmp_path: Path) -> None:
    proxy = microsocks()
    try:
        urls = [server.add(f"/s{i}", b"socks %d" % i).replace("127.0.0.1", "localhost") for i in range(10)]
        for scheme in ("socks5h", "socks5"):
            out = tmp_path / scheme
            result = fetch(
                tmp_path, urls, "-x", f"{scheme}://127.0.0.1:{proxy.port}", "-o", str(out), "--per-host", "2"
            )
            assert result.exit_code == 0, result.stderr
            for i in range(10):
                assert (out / f"localhost_{server.port}" / f"s{i}").read_bytes() == b"socks %d" % i
        assert len(server.requests) == 20
        assert all("via" not in r.headers for r in server.requests)
    finally:
        proxy.close()


def test_socks5_credentials_with_microsocks(server: HTTPTestServer, tmp_path: Path) -> None:
    proxy = microsocks(user="bob", password=SECRET)
    try:
        url = server.add("/a", b"authed")
        good = fetch(tmp_path, [url], "-x", f"socks5h://bob:{SECRET}@127.0.0.1:{proxy.port}")
        assert good.exit_code == 0, good.stderr
        shown = f"socks5h://127.0.0.1:{proxy.port}"
        for given, said in (
            (shown, "requires authentication"),
            (f"socks5h://bob:x{SECRET}@127.0.0.1:{proxy.port}", "refused the credentials"),
        ):
            result = fetch(tmp_path, [url], "-x", given, "--trace")
            (record,) = records(result)
            assert record["error_kind"] == "proxy"
            assert record["error"].startswith(f"proxy {shown}: {said}"), record
            assert SECRET not in result.stdout + result.stderr
        assert len(server.requests) == 1
    finally:
        proxy.close()


def test_socks5_to_a_closed_port_names_the_proxy_and_the_reply(tmp_path: Path) -> None:
    proxy = microsocks()
    try:
        port = closed_port()
        result = run(
            "get", "-x", f"socks5://127.0.0.1:{proxy.port}", "--retries", "0", f"http://127.0.0.1:{port}/"
        )
    finally:
        proxy.close()
    assert result.stderr.startswith(
        f"crawlsel: http://127.0.0.1:{port}/: proxy socks5://127.0.0.1:{proxy.port}: could not reach 127.0.0.1:{port}: "
    )


def test_socks4_through_dante(server: HTTPTestServer, tmp_path: Path) -> None:
    proxy = dante()
    try:
        urls = [server.add(f"/d{i}", b"dante %d" % i) for i in range(5)]
        result = fetch(tmp_path, urls, "-x", f"socks4://127.0.0.1:{proxy.port}")
        assert result.exit_code == 0, result.stderr
        for i in range(5):
            assert (tmp_path / "out" / f"127.0.0.1_{server.port}" / f"d{i}").read_bytes() == b"dante %d" % i
    finally:
        proxy.close()


def test_the_comparison_engines_refuse_a_proxy_rather_than_bypass_it(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add("/e", b"e")
    result = fetch(tmp_path, [url], "--engine", "threads", env={"all_proxy": "socks5h://127.0.0.1:1"})
    assert result.exit_code == 2
    assert (
        result.stderr
        == "crawlsel: error: --engine threads does not support proxies (--proxy or the *_proxy variables)\n"
    )
    assert server.requests == []


def test_https_through_socks5h_verifies_the_origin_name(
    https_localhost: HTTPTestServer, cafile: str, tmp_path: Path
) -> None:
    proxy = microsocks()
    try:
        urls = [
            https_localhost.add(f"/t{i}", b"tls %d" % i).replace("127.0.0.1", "localhost") for i in range(4)
        ]
        result = fetch(
            tmp_path, urls, "-x", f"socks5h://127.0.0.1:{proxy.port}", "--cacert", cafile, "--per-host", "1"
        )
        assert result.exit_code == 0, result.stderr
        for i in range(4):
            assert (
                tmp_path / "out" / f"localhost_{https_localhost.port}" / f"t{i}"
            ).read_bytes() == b"tls %d" % i
        assert https_localhost.handshakes == 1
    finally:
        proxy.close()


def test_every_socks_version_through_openssh(server: HTTPTestServer, tmp_path: Path) -> None:
    proxy = SSHDynamic()
    try:
        urls = [server.add(f"/o{i}", b"ssh %d" % i).replace("127.0.0.1", "localhost") for i in range(3)]
        for scheme in ("socks4a", "socks4", "socks5h", "socks5"):
            out = tmp_path / scheme
            result = fetch(tmp_path, urls, "-x", f"{scheme}://127.0.0.1:{proxy.port}", "-o", str(out))
            assert result.exit_code == 0, (scheme, result.stderr)
            for i in range(3):
                assert (out / f"localhost_{server.port}" / f"o{i}").read_bytes() == b"ssh %d" % i
        assert len(server.requests) == 12
    finally:
        proxy.close()


def test_socks4_cannot_carry_an_ipv6_origin(tmp_path: Path) -> None:
    proxy = f"socks4://127.0.0.1:{closed_port()}"
    (record,) = records(fetch(tmp_path, ["http://[::1]:8080/"], "-x", proxy))
    assert record["error_kind"] == "dns"
    assert record["error"] == f"::1 has no IPv4 address, which SOCKS4 needs ({proxy})"
