"""The exception tree crawlsel translates every lower-level failure into.

Each error carries a short stable ``kind`` word (used in ``--json`` records) and a
message a user can act on.  ``OSError``, ``ssl.SSLError`` and httptools errors are
mapped into this tree at the module boundary where they happen and never reach the CLI.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes; documented in the README and in ``--help``."""

    OK = 0
    FAILED = 1  # at least one URL failed (network, invalid URL, HTTP status >= 400)
    USAGE = 2  # bad options, unreadable sources
    INTERRUPTED = 130  # SIGINT / SIGTERM


class CrawlError(Exception):
    """A failure of one URL; never stops the run."""

    kind = "error"


class InvalidURL(CrawlError):
    kind = "invalid_url"


class ConnectError(CrawlError):
    kind = "connect"


class ResolveError(CrawlError):
    kind = "dns"


class ProxyError(CrawlError):
    """The proxy itself failed (refused, 407, CONNECT denied, tunnel closed); names the proxy."""

    kind = "proxy"


class ProxyUnreachable(ProxyError):
    """No connection to the proxy (refused, timed out): retried, as a connect error is."""


class TLSError(CrawlError):
    """Handshake or certificate failure; never retried."""

    kind = "tls"


class Timeout(CrawlError):
    kind = "timeout"


class ProtocolError(CrawlError):
    """The server's bytes are not a well-framed HTTP/1.1 response."""

    kind = "protocol"


class ConnectionClosed(ProtocolError):
    """The server closed (or reset) the connection before the response was complete.

    ``response_started`` tells whether any byte of the response arrived: a request
    that got no byte back on a reused keep-alive connection may be resent safely.
    """

    def __init__(self, message: str, *, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started


class ConnectionReset(ConnectionClosed):
    """The peer reset the connection (ECONNRESET and friends): worth a retry."""

    kind = "reset"


class TooLarge(CrawlError):
    kind = "too_large"


class DecodeError(CrawlError):
    """Corrupt or unsupported Content-Encoding."""

    kind = "decode"


class RedirectError(CrawlError):
    kind = "redirect"


class HTTPStatusError(CrawlError):
    kind = "http"


class WriteError(CrawlError):
    kind = "write"


class SourceError(Exception):
    """A URL source (file or stdin) cannot be read: a usage error, exit status 2."""
