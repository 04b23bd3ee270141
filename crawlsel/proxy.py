"""Which proxy, if any, carries a URL: ``--proxy``, ``--noproxy`` and the environment, as curl reads them.

curl's rules, because they are what users' shells are set up for: ``http_proxy``
(lower case only: ``HTTP_PROXY`` is what CGI sets from a request's ``Proxy:``
header, the httpoxy hole), ``https_proxy``/``HTTPS_PROXY``, then
``all_proxy``/``ALL_PROXY``; ``no_proxy``/``NO_PROXY`` lists hosts (a name matches
itself and its subdomains), IP addresses, CIDR ranges, or ``*`` for all;
``--noproxy`` replaces it and ``--proxy`` replaces the variables.  A proxy is
named by ``Proxy.display``, which never shows its credentials.  Nothing here does I/O.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from crawlsel.errors import ProxyError
from crawlsel.models import bracketed

# curl's default proxy port, whatever the proxy's scheme.
DEFAULT_PROXY_PORT = 1080
SCHEMES = ("http", "socks4", "socks4a", "socks5", "socks5h")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Proxy(NamedTuple):
    scheme: str  # one of SCHEMES
    host: str  # lower case; IPv6 literals without brackets
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """How errors, --trace and records name it: never with its credentials."""
        return f"{self.scheme}://{bracketed(self.host)}:{self.port}"

    @property
    def remote_dns(self) -> bool:
        """The proxy resolves the origin's name (HTTP proxies, socks4a, socks5h)."""
        return self.scheme not in ("socks4", "socks5")

    def authorization(self) -> str | None:
        """The Proxy-Authorization value for an HTTP proxy (RFC 7617 Basic), if it has credentials."""
        if self.username is None:
            return None
        token = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")


class ProxySettings(NamedTuple):
    """The run's proxies per URL scheme and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()  # lower-case names without a leading dot
    no_proxy_networks: tuple[Network, ...] = ()
    bypass_all: bool = False

    def for_origin(self, scheme: str, host: str) -> Proxy | None:
        proxy = self.http if scheme == "http" else self.https
        if proxy is None or self.bypasses(host):
            return None
        return proxy

    def bypasses(self, host: str) -> bool:
        if self.bypass_all:
            return True
        host = host.rstrip(".").lower()
        for name in self.no_proxy:
            if host == name or host.endswith("." + name):
                return True
        if self.no_proxy_networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            return any(address in network for network in self.no_proxy_networks)
        return False


def parse_proxy(text: str) -> Proxy:
    """A proxy URL; ``host:port`` without a scheme is an HTTP proxy, as for curl.

    ValueError with a message that never repeats the credentials.
    """
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {_masked(text)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ValueError(f"{_masked(text)}: HTTPS proxies (TLS to the proxy) are not supported")
    if scheme not in SCHEMES:
        raise ValueError(f"{_masked(text)}: unsupported proxy scheme {scheme!r} (use {', '.join(SCHEMES)})")
    if not parts.hostname:
        raise ValueError(f"invalid proxy URL {_masked(text)}: no host")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(scheme, parts.hostname.lower(), port or DEFAULT_PROXY_PORT, username, password)


def _masked(text: str) -> str:
    """A proxy URL with any user:password replaced by ``***``."""
    scheme, sep, rest = text.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def parse_no_proxy(text: str) -> tuple[tuple[str, ...], tuple[Network, ...], bool]:
    """``no_proxy`` entries (comma or space separated): names, addresses, CIDR ranges, ``*``."""
    names: list[str] = []
    networks: list[Network] = []
    for entry in text.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return (), (), True
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.append(entry.lstrip(".").rstrip("."))
    return tuple(names), tuple(networks), False


def settings(option: str | None, noproxy: str | None, environ: Mapping[str, str]) -> ProxySettings | None:
    """The run's proxies from ``--proxy``, ``--noproxy`` and the environment; None when there are none.

    ``--proxy ""`` turns every proxy off, as curl's ``-x ""`` does.
    """

    def variable(*names: str) -> str | None:
        for name in names:
            value = environ.get(name)
            if value:
                return value
        return None

    if option is not None:
        if not option:
            return None
        http: Proxy | None = parse_proxy(option)
        https = http
    else:
        fallback = variable("all_proxy", "ALL_PROXY")
        http_text = variable("http_proxy") or fallback  # never HTTP_PROXY (httpoxy)
        https_text = variable("https_proxy", "HTTPS_PROXY") or fallback
        http = parse_proxy(http_text) if http_text else None
        https = parse_proxy(https_text) if https_text else None
    # (a proxy for one scheme only leaves the other direct)
    if http is None and https is None:
        return None
    bypass = noproxy if noproxy is not None else variable("no_proxy", "NO_PROXY") or ""
    names, networks, bypass_all = parse_no_proxy(bypass)
    return ProxySettings(http, https, names, networks, bypass_all)


def forward_refusal(status: int, settings: ProxySettings | None, scheme: str, host: str) -> ProxyError | None:
    """A 407 on a plain-http URL sent through an HTTP proxy is the proxy's answer, not the origin's."""
    if status != 407 or settings is None or scheme != "http":
        return None
    proxy = settings.for_origin(scheme, host)
    if proxy is None or proxy.scheme != "http":
        return None
    return ProxyError(auth_refused(proxy))


def auth_refused(proxy: Proxy) -> str:
    if proxy.username is None:
        return f"proxy {proxy.display} requires authentication (407); give user:password in the proxy URL"
    return f"proxy {proxy.display} refused the credentials (407 Proxy Authentication Required)"
