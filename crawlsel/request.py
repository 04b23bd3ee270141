"""Request bytes: ``RequestTemplate`` renders each request of a run.

The fields every request shares are built once per run; the Host line and the
shared fields after the request line once per run of requests to one origin (a
crawl sends its origins' URLs in runs).  A plain-http URL sent through an HTTP
proxy has an absolute request-target (RFC 9112 3.2.2) and the proxy's
credentials; they never go to an origin (through CONNECT they go in the tunnel's
own request, ``tunnel.HTTPConnect``).  Nothing here opens a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawlsel.models import Target

if TYPE_CHECKING:
    from crawlsel.proxy import ProxySettings


class RequestTemplate:
    """Renders request bytes; the fields shared by all requests are built once, the
    rest after the request line once per run of requests to one origin."""

    __slots__ = ("_common", "_last", "_proxies", "_user_cookie")

    def __init__(
        self,
        user_agent: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
        accept_encoding: str = "identity",
        proxies: ProxySettings | None = None,
        cookies: bool = False,
    ) -> None:
        self._proxies = proxies
        self._user_cookie: str | None = None
        defaults = {
            "user-agent": ("User-Agent", user_agent),
            "accept": ("Accept", "*/*"),
            "accept-encoding": ("Accept-Encoding", accept_encoding),
        }
        for name, value in extra_headers:
            # As curl -H: a user header replaces the default of the same name, and
            # "Name:" with no value removes it.
            defaults[name.lower()] = (name, value)
        if cookies and "cookie" in defaults:
            # One Cookie field per request (RFC 6265 5.4): -H's pairs come first, the stored ones after.
            self._user_cookie = defaults.pop("cookie")[1] or None
        lines = [f"{name}: {value}\r\n" for name, value in defaults.values() if value]
        self._common = "".join(lines).encode("latin-1")
        # (origin and keep-alive, the fields after the request line with and without
        # the Connection line, the connection line, the request-target's prefix)
        self._last: tuple[tuple[str, str, int, bool], bytes, bytes, bytes, str] = (
            ("", "", 0, False),
            b"",
            b"",
            b"",
            "",
        )

    def render(
        self, method: str, target: Target, keep_alive: bool, cookie: str | None = None, extra: bytes = b""
    ) -> bytes:
        """The request; ``extra`` holds field lines of this request alone (CRLF-ended)."""
        key = (target.scheme, target.host, target.port, keep_alive)
        if key != self._last[0]:
            connection = b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n"
            fields = f" HTTP/1.1\r\nHost: {target.host_header}\r\n".encode("ascii") + self._common
            prefix = ""
            proxy = self._proxies.for_origin(target.scheme, target.host) if self._proxies else None
            if proxy is not None and proxy.scheme == "http" and target.scheme == "http":
                prefix = f"http://{target.host_header}"
                credentials = proxy.authorization()
                if credentials is not None:
                    fields += f"Proxy-Authorization: {credentials}\r\n".encode("latin-1")
            self._last = (key, fields + connection, fields, connection, prefix)
        line = f"{method} {self._last[4]}{target.target}".encode("ascii")
        referer = target.referer
        if self._user_cookie is not None:
            cookie = f"{self._user_cookie}; {cookie}" if cookie else self._user_cookie
        if referer is None and cookie is None and not extra:
            return line + self._last[1]
        _, _, fields, connection, _ = self._last
        if referer is not None:
            fields += b"Referer: " + referer.encode("ascii", "replace") + b"\r\n"
        if cookie is not None:  # latin-1 as received in Set-Cookie; "replace" never raises
            fields += b"Cookie: " + cookie.encode("latin-1", "replace") + b"\r\n"
        return line + fields + extra + connection
