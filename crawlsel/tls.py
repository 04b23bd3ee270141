"""TLS settings and the non-blocking handshake (its failures are worded in ``netboundary``).

Imported only once a run meets an https:// URL: loading ``ssl`` (OpenSSL and its
enums) costs about 9 ms of start-up that plain-HTTP runs do not pay.  Certificates are verified against the system store by default
(``ssl.create_default_context`` honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``);
``--cacert`` adds a bundle and ``--insecure`` turns verification off.
"""

from __future__ import annotations

import ssl

from crawlsel.loop import EVENT_READ, EVENT_WRITE
from crawlsel.netboundary import handshake_failed, handshake_lost

# "Try again when the selector says so", for a TLS socket: the plain pair plus the
# two raised when a TLS record is incomplete in either direction.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


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


def handshake_step(sock: ssl.SSLSocket) -> int:
    """Advance a non-blocking handshake: the selector event to wait for, 0 once done."""
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return EVENT_READ
    except ssl.SSLWantWriteError:
        return EVENT_WRITE
    except ssl.SSLError as exc:
        raise handshake_failed(exc) from None
    except OSError as exc:
        raise handshake_lost(exc) from None
    return 0
