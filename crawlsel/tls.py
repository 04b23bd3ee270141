"""TLS settings, the non-blocking handshake, and ``ssl`` failures as one-line reasons.

Imported only once a run meets an https:// URL: loading ``ssl`` (OpenSSL and its
enums) costs about 9 ms of start-up that plain-HTTP runs do not pay.  Certificates are verified against the system store by default
(``ssl.create_default_context`` honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``);
``--cacert`` adds a bundle and ``--insecure`` turns verification off.
"""

from __future__ import annotations

import ssl

from crawlsel.errors import ConnectError, TLSError
from crawlsel.loop import EVENT_READ, EVENT_WRITE

# "Try again when the selector says so", for a TLS socket: the plain pair plus the
# two raised when a TLS record is incomplete in either direction.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
ERRORS = (ssl.SSLError,)

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = (62, 64)


def make_context(*, cacert: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if cacert:
        try:
            context.load_verify_locations(cafile=cacert)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot load CA bundle {cacert}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def describe(exc: ssl.SSLError) -> TLSError:
    """One line a user can act on, for any failure during a TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH_CODES:
            detail = f"hostname mismatch ({exc.verify_message})"
        else:
            detail = exc.verify_message or exc.reason or str(exc)
        return TLSError(f"certificate verify failed: {detail}")
    reason = (exc.reason or "").lower()
    if reason in ("wrong_version_number", "record_layer_failure", "packet_length_too_long", "http_request"):
        return TLSError("TLS handshake failed: the server did not answer with TLS (is it a plain-HTTP port?)")
    if isinstance(exc, ssl.SSLEOFError) or reason == "unexpected_eof_while_reading":
        return TLSError("TLS handshake failed: server closed the connection")
    return TLSError(f"TLS handshake failed: {exc.reason or exc}")


def handshake_step(sock: ssl.SSLSocket) -> int:
    """Advance a non-blocking handshake: the selector event to wait for, 0 once done."""
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return EVENT_READ
    except ssl.SSLWantWriteError:
        return EVENT_WRITE
    except ssl.SSLError as exc:
        raise describe(exc) from None
    except OSError as exc:
        raise ConnectError(f"connection lost during the TLS handshake ({exc.strerror or exc})") from None
    return 0
