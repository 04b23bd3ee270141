"""Option types and the options ``fetch`` and ``get`` share, and the ``Config`` they make.

Click types validate what a user typed (a header, a --resolve entry, a size) and
fail with a usage error that names the option; ``build_config`` checks what needs
more than a type (a CA file that loads) and makes the run's ``Config``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import click

from crawlsel.models import DEFAULT_USER_AGENT, Config

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class HeaderType(click.ParamType):
    """``"Name: value"`` as curl's -H; ``"Name:"`` removes a default header."""

    name = "HEADER"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        name, sep, field_value = text.partition(":")
        name, field_value = name.strip(), field_value.strip()
        if not sep or not _TOKEN.match(name):
            self.fail(f"{text!r} is not of the form 'Name: value'", param, ctx)
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in field_value):
            self.fail(f"header {name} contains control characters", param, ctx)
        if name.lower() in ("host", "connection", "content-length", "transfer-encoding"):
            self.fail(f"header {name} is set by crawlsel and cannot be given", param, ctx)
        try:
            field_value.encode("latin-1")
        except UnicodeEncodeError:
            self.fail(f"header {name} must be Latin-1 text", param, ctx)
        return (name, field_value)


class ResolveType(click.ParamType):
    """``HOST:PORT:ADDR`` as curl's --resolve: connect to ADDR without asking DNS."""

    name = "HOST:PORT:ADDR"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int, str]:
        if isinstance(value, tuple):
            return value
        host, _, rest = str(value).partition(":")
        port, _, addr = rest.partition(":")
        addr = addr.strip("[]")
        try:
            ipaddress.ip_address(addr)
            number = int(port)
        except ValueError:
            self.fail(f"{value!r} is not HOST:PORT:ADDRESS with a numeric port and an IP address", param, ctx)
        if not host or not 0 < number < 65536:
            self.fail(f"{value!r} is not HOST:PORT:ADDRESS", param, ctx)
        return (host.lower(), number, addr)


class SizeType(click.ParamType):
    """A byte count with an optional K, M or G suffix (powers of 1024)."""

    name = "SIZE"
    _units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)i?[bB]?\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not a size such as 500K, 20M or 1G", param, ctx)
        return int(match.group(1)) * self._units[match.group(2).lower()]


class WorkersType(click.ParamType):
    """``--workers``: a number of processes (1 or more) or ``auto``."""

    name = "N|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return text
        if not text.isdigit() or int(text) < 1:
            self.fail(f"{value!r} is not a number of processes (1 or more) or 'auto'", param, ctx)
        return int(text)


def common_options(fn: Any) -> Any:
    """Options shared by ``fetch`` and ``get`` (they arrive in ``**common``)."""
    positive = click.FloatRange(min=0, min_open=True)
    options = [
        click.option(
            "-A", "--user-agent", default=DEFAULT_USER_AGENT, show_default=True, help="User-Agent header."
        ),
        click.option(
            "-H",
            "--header",
            "headers",
            multiple=True,
            type=HeaderType(),
            help="Extra request header 'Name: value' (repeatable).",
        ),
        click.option(
            "--connect-timeout",
            type=positive,
            default=10.0,
            show_default=True,
            help="Seconds to wait for a connection and its TLS handshake.",
        ),
        click.option(
            "--read-timeout",
            type=positive,
            default=30.0,
            show_default=True,
            help="Longest silence, in seconds, while a response is pending.",
        ),
        click.option(
            "--pipeline",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Requests in flight per keep-alive connection (HTTP/1.1 pipelining).",
        ),
        click.option(
            "--cacert",
            type=click.Path(exists=True, dir_okay=False),
            help="Also trust the CA certificates in this PEM file.",
        ),
        click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option(
            "--resolve",
            "pinned",
            multiple=True,
            type=ResolveType(),
            help="Connect to ADDR for HOST:PORT without DNS (repeatable).",
        ),
        click.option(
            "-x",
            "--proxy",
            metavar="URL",
            help="Proxy for every URL: http://[user:pass@]host:port, socks5h://, socks5://, socks4a://, "
            "socks4:// (default: http_proxy, https_proxy, all_proxy; '' for none).",
        ),
        click.option(
            "--noproxy",
            metavar="LIST",
            help="Hosts, addresses and CIDR ranges (comma-separated, '*' for all) not proxied; replaces no_proxy.",
        ),
        click.option(
            "-b",
            "--cookie",
            "cookie_file",
            metavar="FILE",
            type=click.Path(exists=True, dir_okay=False),
            help="Send the cookies of this Netscape cookie file (curl's, wget's); turns cookies on.",
        ),
        click.option(
            "--cookie-jar",
            metavar="FILE",
            type=click.Path(dir_okay=False, writable=True),
            help="Keep cookies servers set and write them all to FILE at the end; turns cookies on.",
        ),
        click.option("-4", "ip_version", flag_value=4, help="Use IPv4 addresses only."),
        click.option("-6", "ip_version", flag_value=6, help="Use IPv6 addresses only."),
        click.option(
            "--timeout",
            type=positive,
            default=120.0,
            show_default=True,
            help="Seconds for a whole URL, retries and redirects included.",
        ),
        click.option(
            "--speed-limit",
            type=click.IntRange(min=0),
            default=0,
            help="Abort a transfer slower than this many bytes/s ...",
        ),
        click.option(
            "--speed-time",
            type=positive,
            default=30.0,
            show_default=True,
            help="... for this many seconds (as curl -Y/-y).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=2,
            show_default=True,
            help="Retries after connect errors, resets, timeouts and 408/429/5xx.",
        ),
        click.option(
            "--retry-delay",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="First backoff in seconds; doubles each retry, with jitter.",
        ),
        click.option(
            "--max-retry-wait",
            type=click.FloatRange(min=0),
            default=60.0,
            show_default=True,
            help="Longest wait honoured from Retry-After.",
        ),
        click.option(
            "--follow/--no-follow",
            default=True,
            show_default=True,
            help="Follow redirects (301, 302, 303, 307, 308).",
        ),
        click.option(
            "--max-redirects",
            type=click.IntRange(min=0),
            default=10,
            show_default=True,
            help="Redirects followed per URL.",
        ),
        click.option(
            "--max-size",
            type=SizeType(),
            default="1G",
            show_default=True,
            help="Largest body saved, after decoding (K, M, G suffixes).",
        ),
        click.option(
            "--compressed/--no-compressed",
            default=True,
            show_default=True,
            help="Ask for gzip/deflate and save decoded bytes.",
        ),
        click.option("--trace", is_flag=True, help="Print every selector event and state change on stderr."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_options(*, per_host: int) -> Any:
    """Options of the commands that save pages (``fetch``, ``crawl``): output, limits, reporting."""
    options = [
        click.option(
            "-o",
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("crawled_page"),
            show_default=True,
            help="Folder the pages are saved under.",
        ),
        click.option(
            "-c",
            "--concurrency",
            type=click.IntRange(min=1),
            default=64,
            show_default=True,
            help="Open connections in total.",
        ),
        click.option(
            "--per-host",
            type=click.IntRange(min=1),
            default=per_host,
            show_default=True,
            help="Open connections per origin (scheme, host, port).",
        ),
        click.option(
            "--keep-alive/--no-keep-alive",
            default=True,
            show_default=True,
            help="Reuse connections for further pages of the same origin.",
        ),
        click.option(
            "--skip-existing",
            is_flag=True,
            help="Do not fetch URLs whose file already exists (resume a run).",
        ),
        click.option(
            "--update",
            is_flag=True,
            help="Ask again for pages already saved with their ETag/Last-Modified; a 304 keeps the file.",
        ),
        click.option(
            "--warc",
            metavar="FILE",
            help="Also write every exchange, as sent and received, to FILE (WARC/1.1; .gz: gzipped).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr."),
        click.option(
            "--no-progress", is_flag=True, help="No live progress display (the summary is still printed)."
        ),
        click.option(
            "--json",
            "json_lines",
            is_flag=True,
            help="One JSON object per URL on stdout, in completion order.",
        ),
    ]

    def decorate(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def build_config(common: dict[str, Any], **specific: Any) -> Config:
    if common["cacert"]:
        from crawlsel.tls import make_context

        try:
            make_context(cacert=common["cacert"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--cacert") from None
    if common["insecure"]:
        click.echo("crawlsel: warning: --insecure: TLS certificates are not verified", err=True)
    from crawlsel.proxy import settings

    try:
        proxies = settings(common["proxy"], common["noproxy"], os.environ)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--proxy or the *_proxy variables") from None
    cookies = None
    jar = common["cookie_jar"]
    if jar and not os.path.isdir(os.path.dirname(os.path.abspath(jar))):
        raise click.BadParameter(f"the folder of {jar} does not exist", param_hint="--cookie-jar")
    if common["cookie_file"] or jar:
        from crawlsel.cookies import CookieStore

        cookies = CookieStore()
        if common["cookie_file"]:
            try:
                cookies.load(common["cookie_file"])
            except (OSError, ValueError) as exc:
                raise click.BadParameter(str(exc), param_hint="--cookie") from None
    fields = {k: v for k, v in common.items() if k not in ("trace", "proxy", "noproxy", "cookie_file")}
    return Config(**fields, proxies=proxies, cookies=cookies, **specific)
