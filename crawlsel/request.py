"""Request bytes: ``RequestTemplate`` renders each request of a run.

The fields every request shares are built once per run; the Host line and the
shared fields after the request line once per run of requests to one origin (a
crawl sends its origins' URLs in runs).  Nothing here opens a socket.
"""

from __future__ import annotations

from crawlsel.models import Target


class RequestTemplate:
    """Renders request bytes; the fields shared by all requests are built once, the
    rest after the request line once per run of requests to one origin."""

    __slots__ = ("_common", "_last")

    def __init__(
        self,
        user_agent: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
        accept_encoding: str = "identity",
    ) -> None:
        defaults = {
            "user-agent": ("User-Agent", user_agent),
            "accept": ("Accept", "*/*"),
            "accept-encoding": ("Accept-Encoding", accept_encoding),
        }
        for name, value in extra_headers:
            # As curl -H: a user header replaces the default of the same name, and
            # "Name:" with no value removes it.
            defaults[name.lower()] = (name, value)
        lines = [f"{name}: {value}\r\n" for name, value in defaults.values() if value]
        self._common = "".join(lines).encode("latin-1")
        self._last: tuple[tuple[str, str, int, bool], bytes, bytes, bytes] = (
            ("", "", 0, False),
            b"",
            b"",
            b"",
        )

    def render(self, method: str, target: Target, keep_alive: bool, extra: bytes = b"") -> bytes:
        """The request; ``extra`` holds field lines of this request alone (CRLF-ended)."""
        key = (target.scheme, target.host, target.port, keep_alive)
        if key != self._last[0]:
            connection = b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n"
            fields = f" HTTP/1.1\r\nHost: {target.host_header}\r\n".encode("ascii") + self._common
            self._last = (key, fields + connection, fields, connection)
        line = f"{method} {target.target}".encode("ascii")
        referer = target.referer
        if referer is None and not extra:
            return line + self._last[1]
        _, _, fields, connection = self._last
        if referer is not None:
            extra = b"Referer: " + referer.encode("ascii", "replace") + b"\r\n" + extra
        return line + fields + extra + connection
