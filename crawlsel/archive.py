"""``--warc FILE``: every exchange of a run archived as WARC/1.1 records, as wget's
``--warc-file`` writes them (wget2 dropped it; Scrapy needs a plugin).

A ``warcinfo`` record comes first; then for each response, as its exchange
completes, a ``request`` record (the bytes sent) and a ``response`` record (the
bytes received, before any decoding: chunk framing and content codings included),
tied by ``WARC-Concurrent-To``, with ``WARC-Target-URI``, ``WARC-Date``,
``WARC-IP-Address`` and SHA-1 block and payload digests.  A 304 to ``--update``'s
conditional request is a ``revisit`` record (profile server-not-modified).  Redirects
and retried answers are archived too: the WARC holds what went over the wire.

The records are written here, not with warcio: its writer cost 6x the run on
5,000 small pages (level-9 gzip, and Python base32 and header objects per record),
where this costs the digests and a level-1 gzip member per record (warcio's own
``warcio check`` and ``warcio index`` read every file in the tests).  Records reach
the file whole (buffered, flushed at the end): a run stopped by Ctrl-C leaves whole
records only.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
import zlib
from datetime import datetime, timezone

from crawlsel import __version__

WARC_VERSION = b"WARC/1.1"
NOT_MODIFIED = b"http://netpreserve.org/warc/1.1/revisit/server-not-modified"
GZIP_LEVEL = 1  # a fifth of level 9's time on pages, a fifth larger


class ArchiveError(Exception):
    """The WARC file cannot be opened or written (the message names it)."""


def _digest(data: bytes | memoryview) -> bytes:
    """``sha1:`` and the digest in base32, as WARC tools write it."""
    return b"sha1:" + base64.b32encode(hashlib.sha1(data).digest())


def _body_start(message: bytes) -> int:
    """Where the payload begins: after the last head's empty line (1xx heads come first)."""
    at = 0
    while True:
        end = message.find(b"\r\n\r\n", at)
        end = end + 4 if end >= 0 else message.find(b"\n\n", at) + 2
        if end < 2:
            return len(message)
        if message[at + 9 : at + 10] != b"1" or not message.startswith(b"HTTP/", at):
            return end
        at = end


def _now() -> bytes:
    return (
        datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z").encode("ascii")
    )


def _record_id() -> bytes:
    """A random (version 4) UUID; from ``random``, a fifth of uuid4()'s os.urandom cost."""
    return b"<urn:uuid:" + str(uuid.UUID(int=random.getrandbits(128), version=4)).encode("ascii") + b">"


class Archive:
    """One WARC file being written."""

    def __init__(self, path: str, command: str) -> None:
        self.path = path
        self.failed: str | None = None
        self._gzip = path.endswith(".gz")
        try:
            self._file = open(path, "wb", buffering=256 * 1024)  # noqa: SIM115  # closed by close()
        except OSError as exc:
            raise ArchiveError(f"cannot write {path}: {exc.strerror}") from None
        fields = f"software: crawlsel/{__version__}\r\nformat: WARC File Format 1.1\r\ncommand: {command}\r\n"
        name = path.rsplit("/", 1)[-1].encode("utf-8", "replace")
        self._write(
            b"warcinfo",
            fields.encode("utf-8", "replace"),
            [(b"WARC-Filename", name)],
            b"application/warc-fields",
        )

    def exchange(self, url: str, request: bytes, response: bytes, sock: object) -> None:
        """Archive one exchange (``sock``: its socket, for the peer's address). A file
        that cannot be written stops the archive, with the reason in ``failed``."""
        if self.failed is not None:
            return
        try:
            ip = sock.getpeername()[0] if sock is not None else None  # type: ignore[attr-defined]
        except OSError:
            ip = None
        common = [(b"WARC-Target-URI", url.encode("utf-8", "replace"))]
        if ip:
            common.append((b"WARC-IP-Address", ip.encode("ascii")))
        kind = b"revisit" if response.startswith((b"HTTP/1.1 304", b"HTTP/1.0 304")) else b"response"
        answer_id = _record_id()
        payload = memoryview(response)[_body_start(response) :]  # no copy of the body to hash it
        answer = [*common, (b"WARC-Payload-Digest", _digest(payload))]
        if kind == b"revisit":
            answer += [(b"WARC-Profile", NOT_MODIFIED), (b"WARC-Refers-To-Target-URI", common[0][1])]
        date = _now()  # one for both records: they are concurrent
        try:
            self._write(kind, response, answer, b"application/http; msgtype=response", answer_id, date)
            asked = [*common, (b"WARC-Concurrent-To", answer_id)]
            self._write(b"request", request, asked, b"application/http; msgtype=request", date=date)
        except ArchiveError as exc:
            self.failed = str(exc)

    def _write(
        self,
        kind: bytes,
        block: bytes,
        fields: list[tuple[bytes, bytes]],
        content_type: bytes,
        record_id: bytes = b"",
        date: bytes = b"",
    ) -> None:
        head = [
            (b"WARC-Type", kind),
            (b"WARC-Record-ID", record_id or _record_id()),
            (b"WARC-Date", date or _now()),
            *fields,
            (b"WARC-Block-Digest", _digest(block)),
            (b"Content-Type", content_type),
            (b"Content-Length", b"%d" % len(block)),
        ]
        lines = b"".join([WARC_VERSION, b"\r\n", *(n + b": " + v + b"\r\n" for n, v in head), b"\r\n"])
        if self._gzip:  # one gzip member per record (WARC 1.1 annex D)
            packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            parts = [
                packer.compress(lines),
                packer.compress(block),
                packer.compress(b"\r\n\r\n") + packer.flush(),
            ]
        else:
            parts = [lines, block, b"\r\n\r\n"]
        try:
            self._file.writelines(parts)  # whole records only reach the file, on Ctrl-C too
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.path}: {exc.strerror}") from None
