"""The network boundary: OS, socket and TLS failures as ``CrawlError``s, and socket set-up.

Every engine (the select engine's connection, and the blocking, threads and
coroutine engines) meets the same failures of the same system calls.  Here each
becomes the one ``CrawlError`` a user reads, worded once, so that a record does
not depend on the engine that fetched it (tests compare the messages to the byte).
The functions return the error; the caller raises it (``raise ... from None``:
the OS traceback says nothing a user can act on).

Also here: the one way a TCP socket is made (non-blocking, ``TCP_NODELAY``, its
connect started), the blocking connect over a host's addresses, and the rule for
the one free resend of a request that a closed keep-alive connection never saw.

No ``import ssl``: plain-HTTP runs do not pay for loading OpenSSL.  An
``ssl.SSLError`` can only exist once ``ssl`` is loaded, so it is recognised
through ``sys.modules``.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from crawlsel.errors import (
    ConnectError,
    ConnectionClosed,
    ConnectionReset,
    CrawlError,
    ProtocolError,
    Timeout,
    TLSError,
)
from crawlsel.models import Address, bracketed

if TYPE_CHECKING:
    import ssl


# "Try again when the selector says so" (asyncio/selector_events.py uses the same pair).
WOULD_BLOCK: tuple[type[BaseException], ...] = (BlockingIOError, InterruptedError)
# What a non-blocking connect_ex returns when the connect is under way (or done).
CONNECT_STARTED = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN})

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = (62, 64)
# OpenSSL's reasons when the peer answered a ClientHello with something not TLS.
_NOT_TLS_REASONS = ("wrong_version_number", "record_layer_failure", "packet_length_too_long", "http_request")


# --- addresses -----------------------------------------------------------------


def format_address(sockaddr: tuple | None) -> str:
    """``127.0.0.1:80`` or ``[::1]:8080``, as curl names what it connects to."""
    if not sockaddr:
        return "?"
    return f"{bracketed(sockaddr[0])}:{sockaddr[1]}"


# --- connecting ----------------------------------------------------------------


def start_connect(address: Address) -> tuple[socket.socket, int]:
    """A new non-blocking TCP socket with its connect to ``address`` started.

    Returns the socket and ``connect_ex``'s answer: one of CONNECT_STARTED, or
    the errno of a connect that failed at once (the socket is then the caller's
    to close).  ``TCP_NODELAY``: a request leaves in one send and should not
    wait for the server's ACK of a previous one (Nagle).
    """
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, sock.connect_ex(sockaddr)


def connect_blocking(addresses: Iterable[Address], timeout: float) -> socket.socket:
    """A blocking connect to the first address that answers, tried in order.

    Raises ``Timeout`` when one attempt takes ``timeout`` seconds, ``ConnectError``
    naming the last address when every one refused.  The socket is left with
    ``timeout`` as its timeout and ``TCP_NODELAY`` set.
    """
    failure: ConnectError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            raise connect_timed_out(timeout) from None
        except OSError as exc:
            sock.close()
            failure = connect_failed(sockaddr, exc.errno or 0)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise failure or ConnectError("no address to connect to")


def connect_failed(sockaddr: tuple | None, err: int) -> ConnectError:
    """A refused or failed connect (``err`` is its errno, as ``SO_ERROR`` gives it)."""
    return ConnectError(f"could not connect to {format_address(sockaddr)}: {os.strerror(err)}")


def connect_timed_out(seconds: float) -> Timeout:
    return Timeout(f"connect timed out after {seconds:g} s")


# --- the TLS handshake -----------------------------------------------------------


def handshake_timed_out(seconds: float) -> Timeout:
    return Timeout(f"TLS handshake timed out after {seconds:g} s")


def handshake_lost(exc: OSError) -> ConnectError:
    """The socket failed under the handshake (reset, broken pipe), not TLS itself."""
    return ConnectError(f"connection lost during the TLS handshake ({exc.strerror or exc})")


def handshake_failed(exc: ssl.SSLError) -> TLSError:
    """One line a user can act on, for any ``ssl.SSLError`` of a TLS handshake."""
    import ssl  # loaded already: there is an SSLError

    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH_CODES:
            detail = f"hostname mismatch ({exc.verify_message})"
        else:
            detail = exc.verify_message or exc.reason or str(exc)
        return TLSError(f"certificate verify failed: {detail}")
    reason = (exc.reason or "").lower()
    if reason in _NOT_TLS_REASONS:
        return TLSError("TLS handshake failed: the server did not answer with TLS (is it a plain-HTTP port?)")
    if isinstance(exc, ssl.SSLEOFError) or reason == "unexpected_eof_while_reading":
        return TLSError("TLS handshake failed: server closed the connection")
    return TLSError(f"TLS handshake failed: {exc.reason or exc}")


# --- the exchange ------------------------------------------------------------------


def send_failed(exc: OSError) -> ConnectionReset:
    """The request could not be sent: no byte of a response can have arrived."""
    return ConnectionReset(
        f"connection lost while sending the request ({exc.strerror or exc})", response_started=False
    )


def receive_failed(exc: OSError, *, response_started: bool) -> ConnectionClosed:
    """A failed ``recv``: a TLS error (not worth a retry) or a reset (worth one).

    ``response_started`` is what the parser saw before: only then is a resend unsafe.
    """
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return ConnectionClosed(
            f"TLS error while receiving ({getattr(exc, 'reason', None) or exc})",
            response_started=response_started,
        )
    return ConnectionReset(
        f"connection reset by server ({exc.strerror or exc})", response_started=response_started
    )


def read_timed_out(seconds: float) -> Timeout:
    return Timeout(f"no data from server for {seconds:g} s")


def too_slow(limit: int, seconds: float) -> Timeout:
    """curl's --speed-limit: fewer than ``limit`` bytes a second over a whole ``seconds``."""
    return Timeout(f"transfer slower than {limit:,} B/s for {seconds:g} s (--speed-limit)")


def send_timed_out(seconds: float) -> Timeout:
    """The coroutine engine's send waited ``seconds`` (the select engine's read timer says read_timed_out)."""
    return Timeout("send timed out")


def internal_error(exc: Exception) -> ProtocolError:
    """A bug in crawlsel met while handling one socket: it fails that URL, never the run."""
    return ProtocolError(f"internal error: {type(exc).__name__}: {exc}")


def unanswered(error: CrawlError, reused: bool) -> bool:
    """The free resend rule: a request that got no byte of answer on a connection
    that had answered before (an idle keep-alive connection the server closed, or
    a server that closes after N requests, as nginx's keepalive_requests) may go
    again on a new connection without counting as a retry (RFC 9112 9.3.1: the
    server never saw it).  After any byte of a response, never.  The caller bounds
    how often one URL gets this."""
    return reused and isinstance(error, ConnectionClosed) and not error.response_started
