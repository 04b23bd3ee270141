"""Where a page is saved, and saving it so that no partial file ever has a final name.

``page_path`` maps a URL to ``HOST[_PORT]/PATH`` under the output folder.  Every
segment is made a valid, unambiguous file name on Linux, macOS and Windows, and no
URL can name a path outside the folder.  ``PageWriter`` streams a body into a
temporary file in the destination folder and renames it into place when complete.
The writer is told where a page goes, never whether: which responses are saved
is the run's policy (``run.save_2xx``).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from crawlsel.errors import CrawlError, WriteError
from crawlsel.hashtable import HashMap64, fingerprint
from crawlsel.models import DEFAULT_PORTS, Target, bracketed
from crawlsel.urls import normalize_escapes, remove_dot_segments

if TYPE_CHECKING:
    from crawlsel.job import Job

INDEX_NAME = "index.html"  # the name wget and curl's --create-dirs users expect for "/"
MAX_NAME_BYTES = 200  # below every common file system's 255, leaving room for the temp suffix
_HASH_CHARS = 16

# Characters that may not appear in a file name on at least one of Linux, macOS and
# Windows, plus "%", which is kept for escapes so that names stay unambiguous.
_UNSAFE_CHARS = frozenset('<>:"/\\|?*%') | frozenset(chr(c) for c in range(0x20)) | {"\x7f"}
# Every unsafe character is ASCII: str.translate escapes them all in one pass.
_ESCAPE_UNSAFE = {ord(ch): f"%{ord(ch):02X}" for ch in _UNSAFE_CHARS}
# RFC 3986 unreserved characters: an escape of one of them means the same URL
# decoded, so it is decoded; escapes of reserved characters change the URL's
# meaning (RFC 3986 2.2) and are kept.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(10)] + [f"LPT{i}" for i in range(10)]
)
# A segment made only of these needs no escaping (and is at most 200 bytes).
_PLAIN = re.compile(rf"[A-Za-z0-9\-._~!$&'()+,;=@]{{1,{MAX_NAME_BYTES}}}")
# A body up to HOLD_BYTES is kept in memory until it is complete, while the run
# holds at most HELD_BYTES_MAX that way (10,000 connections cannot hold 640 MiB).
HOLD_BYTES = 64 * 1024
HELD_BYTES_MAX = 8 * 1024 * 1024
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def page_path(target: Target) -> list[str]:
    """The parts of the path a page is saved under, relative to the output folder."""
    path, sep, query = target.target.partition("?")
    # parse_url already normalised the target; a Target built any other way must
    # still not name a path outside the folder, so the (cheap) check stays here.
    segments = remove_dot_segments(normalize_escapes(path) if "%" in path else path).split("/")[1:]
    if not segments or segments[-1] == "":
        segments = segments[:-1] + [INDEX_NAME]
    if sep:
        segments[-1] += "?" + query
    return [_host_folder(target.host, target.port, target.scheme)] + [safe_name(s) for s in segments]


@functools.lru_cache(maxsize=4096)  # a list names few hosts, many times
def _host_folder(host: str, port: int, scheme: str) -> str:
    host = bracketed(host)
    if port != DEFAULT_PORTS[scheme]:
        host = f"{host}_{port}"
    return safe_name(host)


def safe_name(segment: str) -> str:
    """One path segment as a portable file name (see the module docstring)."""
    if (
        _PLAIN.fullmatch(segment)
        and not segment.endswith(".")
        and segment.split(".", 1)[0].upper() not in _WINDOWS_RESERVED
    ):
        return segment  # the common case: nothing to escape or decode
    if "%" not in segment:
        name = segment.translate(_ESCAPE_UNSAFE)  # no escapes to decode: one C call
    else:
        name = _escape_and_decode(segment)
    if name in (".", ".."):
        name = name.replace(".", "%2E")
    if name.endswith((".", " ")):  # Windows drops trailing dots and spaces
        name = name[:-1] + _encode_char(name[-1])
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        name = _encode_char(name[0]) + name[1:]
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        name = _shorten(name)
    return name or "%"


def _escape_and_decode(segment: str) -> str:
    """Escape unsafe characters; decode escapes of unreserved and non-ASCII ones."""
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        ch = segment[i]
        if ch == "%" and i + 2 < n and _is_hex(segment[i + 1 : i + 3]):
            escape = segment[i : i + 3]
            i += 3
            # Gather a run of escapes: together they may spell one UTF-8 character.
            run = [escape]
            while i + 2 < n and segment[i] == "%" and _is_hex(segment[i + 1 : i + 3]):
                run.append(segment[i : i + 3])
                i += 3
            out.append(_decode_escapes(run))
            continue
        out.append(_encode_char(ch) if ch in _UNSAFE_CHARS else ch)
        i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def _decode_escapes(run: list[str]) -> str:
    """Decode escapes to characters where the result is a safe, unreserved or non-ASCII one."""
    raw = unquote_to_bytes("".join(run))
    out: list[str] = []
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte < 0x80:
            ch = chr(byte)
            out.append(ch if ch in _UNRESERVED else f"%{byte:02X}")
            i += 1
            continue
        length = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 0
        try:
            ch = raw[i : i + length].decode("utf-8") if length else ""
        except UnicodeDecodeError:
            ch = ""
        if ch and ch.isprintable():
            out.append(ch)
            i += length
        else:
            out.append(f"%{byte:02X}")
            i += 1
    return "".join(out)


def _encode_char(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _shorten(name: str) -> str:
    import hashlib  # rare: names over 200 bytes

    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    keep = name.encode("utf-8")[: MAX_NAME_BYTES - _HASH_CHARS - 1].decode("utf-8", "ignore")
    return f"{keep}~{digest}"


class PageFile:
    """A body on its way to its file; ``commit`` renames the finished file into place.

    A small body is held in memory and written with one call at ``commit``: the
    file is created only then, so a page that arrives in one read costs no file
    call before the connection has sent its next request.  A body larger than
    HOLD_BYTES, or one arriving while the run already holds HELD_BYTES_MAX,
    streams to its temporary file as it comes.
    """

    __slots__ = ("final", "_tmp", "_fd", "_held", "_held_bytes", "_writer")

    def __init__(self, final: str, tmp: str, writer: PageWriter) -> None:
        self.final = final
        self._tmp = tmp
        self._fd = -1
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._writer = writer

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            size = self._held_bytes + len(data)
            writer = self._writer
            if size <= HOLD_BYTES and writer.held_bytes + len(data) <= HELD_BYTES_MAX:
                # Held past this call: a view of a reused buffer must be copied.
                self._held.append(data if type(data) is bytes else bytes(data))
                self._held_bytes = size
                writer.held_bytes += len(data)
                return
            self._create()
        self._write(data)

    def _create(self) -> None:
        """Create the temporary file and write what was held."""
        try:
            self._fd = os.open(self._tmp, _OPEN_FLAGS, 0o644)
        except OSError as exc:
            self._release()
            raise WriteError(f"cannot create {self.final}: {exc.strerror or exc}") from None
        held = self._held
        self._release()
        if held:
            self._write(held[0] if len(held) == 1 else b"".join(held))

    def _release(self) -> None:
        self._writer.held_bytes -= self._held_bytes
        self._held = []
        self._held_bytes = 0

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # rare on a regular file: finish the rest
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.discard()
            raise WriteError(f"cannot write {self.final}: {exc.strerror or exc}") from None

    def commit(self) -> str:
        if self._fd < 0:
            self._create()
        try:
            os.close(self._fd)
            self._fd = -1
            try:
                os.replace(self._tmp, self.final)
            except IsADirectoryError:
                # "/a" after "/a/b" made a folder "a": the page goes inside it.
                self.final = os.path.join(self.final, INDEX_NAME)
                os.replace(self._tmp, self.final)
        except OSError as exc:
            self.discard()
            raise WriteError(f"cannot save {self.final}: {exc.strerror or exc}") from None
        return self.final

    def discard(self) -> None:
        if self._fd < 0:
            self._release()  # nothing was created
            return
        os.close(self._fd)
        self._fd = -1
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


class PageWriter:
    """Opens ``PageFile``s; no two URLs of a run get the same file.

    Which responses are saved is the caller's decision (``run.save_2xx``): a
    writer is only told where a page goes.
    """

    def __init__(self, root: Path, *, index_alias: bool = False) -> None:
        self.root = str(root)
        # A crawl reaches "DIR/" and "DIR/index.html" both (pages link "../index.html"):
        # as with wget -r, they are one file, not index.html and index.html.1.
        self._index_alias = index_alias
        # case-folded relative path -> the URL that owns it, both as 64-bit
        # fingerprints, so that a run of a million URLs keeps this small.
        self._claimed = HashMap64()
        self._names: dict[str, str] = {}  # URL -> relative path, for URLs not yet saved
        self._made_dirs: set[str] = set()
        self._tmp_prefix = f".crawlsel-{os.getpid()}-"
        self._tmp_ids = itertools.count()
        self.held_bytes = 0  # bodies held in memory by open PageFiles (approximate with threads)

    def open(self, target: Target) -> PageFile:
        """The file the page of ``target`` is written to (folders made as needed)."""
        relative = self._names.pop(target.url, None) or self._claim(target)
        final = os.path.join(self.root, relative)
        folder = os.path.dirname(final)
        try:
            if folder not in self._made_dirs:
                try:
                    os.makedirs(folder, exist_ok=True)
                except (FileExistsError, NotADirectoryError):
                    final = os.path.join(self.root, self._around_file(relative, target))
                    folder = os.path.dirname(final)
                self._made_dirs.add(folder)
        except OSError as exc:
            raise WriteError(f"cannot create {final}: {exc.strerror or exc}") from None
        return PageFile(final, os.path.join(folder, f"{self._tmp_prefix}{next(self._tmp_ids)}.part"), self)

    def _around_file(self, relative: str, target: Target) -> str:
        """A file stands where a folder of the page should be ("/a" saved before
        "/a/b"): the rest of the path is kept in one name, its slashes escaped."""
        parts = relative.split("/")
        for i in range(1, len(parts)):
            if os.path.isfile(os.path.join(self.root, *parts[:i])):
                flat = "%2F".join(parts[i - 1 :])
                return self._claim_relative("/".join([*parts[: i - 1], flat]), target)
        raise NotADirectoryError(f"cannot create the folders of {relative}")

    def forget(self, url: str) -> None:
        """The URL has its result: drop its pending name (its claim stays)."""
        self._names.pop(url, None)

    def prepare(self, target: Target) -> None:
        """Claim the URL's name in input order, so that names do not depend on timing."""
        self._names[target.url] = self._claim(target)

    def existing(self, target: Target) -> str | None:
        """For --skip-existing: the saved file of this URL, if there is one."""
        relative = self._claim(target)
        path = os.path.join(self.root, relative)
        if os.path.isfile(path):
            return path
        self._names[target.url] = relative
        return None

    def claim(self, target: Target) -> Path:
        """The final path for a URL; a second URL wanting the same name gets a suffix.

        Names are compared case-folded, so that a run never overwrites its own
        pages on a case-insensitive file system (macOS, Windows).
        """
        return Path(self.root, self._claim(target))

    def _claim(self, target: Target) -> str:
        return self._claim_relative("/".join(page_path(target)), target)

    def _claim_relative(self, relative: str, target: Target) -> str:
        url = target.url
        if self._index_alias:
            path, mark, query = url.partition("?")
            if path.endswith("/index.html"):
                url = path[:-10] + mark + query
        owner = fingerprint(url)
        if self._claimed.setdefault(relative.casefold(), url) != owner:
            for n in itertools.count(1):
                candidate = f"{relative}.{n}"
                if self._claimed.setdefault(candidate.casefold(), url) == owner:
                    return candidate
        return relative


def commit_page(job: Job) -> tuple[str | None, CrawlError | None]:
    """Finish the page of a URL's last response: the body must have decoded to its
    end, then the file takes its final name.  (path, None), or (None, the error)
    with the partial file removed: nothing partial stands under a final name."""
    try:
        if job.decoder is not None:
            job.decoder.finish()
        path = job.sink.commit() if job.sink is not None else None
        job.sink = None
        return path, None
    except CrawlError as exc:
        if job.sink is not None:
            job.sink.discard()
            job.sink = None
        return None, exc
