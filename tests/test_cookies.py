"""Cookies: RFC 6265's rules as a table, Netscape files, and real servers setting them during a run."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner, Result

from crawlsel.cli import main
from crawlsel.cookies import Cookie, CookieStore, parse_date, parse_set_cookie
from crawlsel.sources import parse_url

from servers import HTTPTestServer


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fetch(tmp_path: Path, urls: list[str], *args: str) -> Result:
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    return run(
        "fetch", str(source), "-o", str(tmp_path / "out"), "--json", "-q", "-c", "1", "--per-host", "1", *args
    )


def sent(server: HTTPTestServer, path: str) -> list[str | None]:
    """The Cookie field of each request the server got for ``path``."""
    return [r.headers.get("cookie") for r in server.requests if r.target == path]


def jar_lines(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("# ")]


# --- the rules -------------------------------------------------------------------


def test_set_cookie_attributes_and_the_domain_rule() -> None:
    page = parse_url("http://www.example.com/a/b/page?x=1")
    cookie = parse_set_cookie("sid=abc; Path=/a; Domain=.Example.COM; Secure; HttpOnly; Max-Age=60", page)
    assert cookie is not None
    assert (cookie.name, cookie.value, cookie.domain, cookie.host_only, cookie.path) == (
        "sid",
        "abc",
        "example.com",
        False,
        "/a",
    )
    assert cookie.secure and cookie.http_only and cookie.expires is not None
    assert cookie.expires - time.time() == pytest.approx(60, abs=5)
    default = parse_set_cookie("k=v", page)
    assert default is not None and default.host_only and default.domain == "www.example.com"
    assert default.path == "/a/b"  # the request path up to its last "/"
    # A site cannot set cookies for another one, a top-level domain, or an IP from a name.
    for foreign in ("k=v; Domain=example.org", "k=v; Domain=com", "k=v; Domain=ww.example.com", "novalue"):
        assert parse_set_cookie(foreign, page) is None, foreign
    assert parse_set_cookie("k=v; Domain=0.0.1", parse_url("http://127.0.0.1/")) is None


def test_cookie_dates_as_rfc_6265_parses_them() -> None:
    expected = 1445412480.0  # 2015-10-21 07:28:00 UTC
    for text in (
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Wednesday, 21-Oct-15 07:28:00 GMT",
        "21 Oct 2015 07:28:00",
        "Wed Oct 21 07:28:00 2015",
    ):
        assert parse_date(text) == expected, text
    for bad in ("tomorrow", "Wed, 32 Oct 2015 07:28:00 GMT", "21 Oct 2015", "Wed, 21 Oct 1500 07:28:00 GMT"):
        assert parse_date(bad) is None, bad


def test_which_cookies_a_request_gets() -> None:
    store = CookieStore()
    now = time.time()
    for cookie in (
        Cookie("host", "1", "www.example.com", True, "/", False, None),
        Cookie("dom", "2", "example.com", False, "/", False, now + 100),
        Cookie("deep", "3", "example.com", False, "/docs", False, None),
        Cookie("safe", "4", "example.com", False, "/", True, None),
        Cookie("old", "5", "example.com", False, "/", False, now - 1),
        Cookie("other", "6", "example.org", False, "/", False, None),
    ):
        store.add(cookie)
    assert store.header(parse_url("http://www.example.com/docs/x")) == "deep=3; host=1; dom=2"
    assert store.header(parse_url("https://www.example.com/docsy")) == "host=1; dom=2; safe=4"
    assert store.header(parse_url("http://api.example.com/")) == "dom=2"  # not the host-only one
    assert store.header(parse_url("http://example.net/")) is None
    assert len(store) == 5  # the expired one was never stored


# --- real servers ------------------------------------------------------------------


def test_off_unless_asked(server: HTTPTestServer, tmp_path: Path) -> None:
    login = server.add("/login", b"in", headers=[("Set-Cookie", "sid=abc")])
    later = server.add("/later", b"x")
    assert fetch(tmp_path, [login, later]).exit_code == 0
    assert sent(server, "/later") == [None]


def test_a_login_redirect_then_later_pages_send_the_cookie_and_the_jar_keeps_it(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    server.add(
        "/login",
        status=302,
        reason="Found",
        headers=[
            ("Set-Cookie", "sid=abc123; Path=/; HttpOnly"),
            ("Set-Cookie", "lang=en; Path=/account; Max-Age=3600"),
            ("Location", "/account/home"),
        ],
    )
    server.add("/account/home", b"welcome")
    later = server.add("/account/settings", b"settings")
    outside = server.add("/public", b"public")
    jar = tmp_path / "jar.txt"
    result = fetch(
        tmp_path, [server.url("/login"), later, outside], "--cookie-jar", str(jar), "-H", "Cookie: given=0"
    )
    assert result.exit_code == 0, result.stderr
    assert all(r.raw.lower().count(b"\r\ncookie:") == 1 for r in server.requests)  # one field, -H's first
    assert sent(server, "/login") == ["given=0"]
    assert sent(server, "/account/home") == ["given=0; lang=en; sid=abc123"]  # longer path first
    assert sent(server, "/account/settings") == ["given=0; lang=en; sid=abc123"]
    assert sent(server, "/public") == ["given=0; sid=abc123"]
    lines = jar_lines(jar)
    assert ["#HttpOnly_127.0.0.1", "FALSE", "/", "FALSE", "0", "sid", "abc123"] in lines
    (lang,) = [line for line in lines if line[5] == "lang"]
    assert lang[:4] == ["127.0.0.1", "FALSE", "/account", "FALSE"]
    assert int(lang[4]) == pytest.approx(time.time() + 3600, abs=60)
    assert oct(jar.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cookies-")] == []


def test_a_cookie_never_crosses_to_another_site_on_a_redirect(make_server, tmp_path: Path) -> None:
    first, second = make_server(), make_server()
    elsewhere = f"http://localhost:{second.port}/landing"
    second.add("/landing", b"landed")
    first.add(
        "/go",
        status=302,
        reason="Found",
        headers=[
            ("Set-Cookie", "mine=1"),
            ("Set-Cookie", "theirs=2; Domain=localhost"),  # set for another site: ignored
            ("Location", elsewhere),
        ],
    )
    jar = tmp_path / "jar.txt"
    result = fetch(tmp_path, [first.url("/go")], "--cookie-jar", str(jar), "-H", "Cookie: given=3")
    assert result.exit_code == 0, result.stderr
    assert sent(second, "/landing") == [None]
    assert [line[5] for line in jar_lines(jar)] == ["mine"]


def test_a_cookie_file_is_read_by_the_rules_and_updated(server: HTTPTestServer, tmp_path: Path) -> None:
    future = int(time.time()) + 86400
    (tmp_path / "in.txt").write_text(
        "# Netscape HTTP Cookie File\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t{future}\tkept\tyes\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t{future}\tdropped\tbye\n"
        "127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\tlong-ago\n"
        f"127.0.0.1\tFALSE\t/\tTRUE\t{future}\tsecure\tonly-https\n"
        f"127.0.0.1\tFALSE\t/elsewhere\tFALSE\t{future}\tpathed\tno\n"
        f".example.com\tTRUE\t/\tFALSE\t{future}\tforeign\tno\n"
        f"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\ts\n"
    )
    page = server.add(
        "/page", b"p", headers=[("Set-Cookie", "dropped=x; Max-Age=0"), ("Set-Cookie", "fresh=new")]
    )
    then = server.add("/then", b"t")
    jar = tmp_path / "out.txt"
    result = fetch(tmp_path, [page, then], "-b", str(tmp_path / "in.txt"), "--cookie-jar", str(jar))
    assert result.exit_code == 0, result.stderr
    assert sent(server, "/page") == ["kept=yes; dropped=bye; session=s"]
    assert sent(server, "/then") == ["kept=yes; session=s; fresh=new"]
    names = sorted(line[5] for line in jar_lines(jar))
    assert names == ["foreign", "fresh", "kept", "pathed", "secure", "session"]


def test_secure_cookies_go_to_https_only(server: HTTPTestServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    https = HTTPTestServer(tls=context)
    try:
        cafile = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        setter = https.add("/set", b"s", headers=[("Set-Cookie", "tok=1; Secure"), ("Set-Cookie", "plain=2")])
        again = https.add("/again", b"a")
        plain = server.add("/plain", b"p")  # the same host, another port: cookies ignore ports (RFC 6265 8.5)
        result = fetch(
            tmp_path, [setter, again, plain], "--cacert", str(cafile), "--cookie-jar", str(tmp_path / "j")
        )
        assert result.exit_code == 0, result.stderr
        assert sent(https, "/again") == ["tok=1; plain=2"]
        assert sent(server, "/plain") == ["plain=2"]
    finally:
        https.close()


def test_cookie_files_work_both_ways_with_curl(server: HTTPTestServer, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    url = server.add("/c", b"c", headers=[("Set-Cookie", "a=1; Path=/; Max-Age=600"), ("Set-Cookie", "b=2")])
    check = server.add("/check", b"k")
    curl_jar, our_jar = tmp_path / "curl.txt", tmp_path / "ours.txt"
    subprocess.run([curl, "-s", "-o", os.devnull, "-c", str(curl_jar), url], check=True)
    assert fetch(tmp_path, [check], "-b", str(curl_jar), "--cookie-jar", str(our_jar)).exit_code == 0
    (first,) = sent(server, "/check")
    assert first is not None and sorted(first.split("; ")) == ["a=1", "b=2"]  # curl's file order
    subprocess.run([curl, "-s", "-o", os.devnull, "-b", str(our_jar), check], check=True)
    assert sorted(sent(server, "/check")[-1].split("; ")) == ["a=1", "b=2"]  # type: ignore[union-attr]


def test_bad_cookie_files_are_one_line_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("127.0.0.1\tFALSE\t/\n")
    result = run("get", "-b", str(bad), "http://127.0.0.1:1/")
    assert result.exit_code == 2
    assert f"{bad}, line 1: not a Netscape cookie line" in result.stderr
    result = run("get", "--cookie-jar", str(tmp_path / "no" / "jar.txt"), "http://127.0.0.1:1/")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records == []


def test_an_unwritable_jar_is_one_line_at_the_end(server: HTTPTestServer) -> None:
    jar = "/proc/crawlsel-cookies.txt"  # an existing folder no one, root included, can create files in
    url = server.add("/x", b"x", headers=[("Set-Cookie", "a=1")])
    result = run("get", "--cookie-jar", jar, url)
    assert result.exit_code == 1
    assert result.stdout == "x"
    assert result.stderr == f"crawlsel: error: cannot write the cookie jar {jar}: No such file or directory\n"


def test_a_crawl_sends_the_cookie_its_seed_set(server: HTTPTestServer, tmp_path: Path) -> None:
    server.add(
        "/",
        b'<a href="/members/">members</a>',
        headers=[("Content-Type", "text/html"), ("Set-Cookie", "session=s1; Path=/members")],
    )
    server.add("/members/", b"<p>hello</p>", headers=[("Content-Type", "text/html")])
    result = run(
        "crawl",
        "-o",
        str(tmp_path / "out"),
        "-q",
        "--ignore-robots",
        "--cookie-jar",
        str(tmp_path / "j"),
        server.url("/"),
    )
    assert result.exit_code == 0, result.stderr
    assert sent(server, "/") == [None]
    assert sent(server, "/members/") == ["session=s1"]
