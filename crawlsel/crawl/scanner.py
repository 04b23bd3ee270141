"""Finding the links of saved pages, in a helper process when a core is free for it.

Scanning a page costs about as much as fetching it (lexbor's parse of a 17 KiB page
takes ~0.2 ms, nginx serves it in less), so a crawl that scans in its event loop
runs at fetch time plus scan time. On a machine with two or more cores the pages
are scanned by a forked child instead, while the loop goes on fetching: the
frontier ``submit``s saved pages and ``collect``s what they link to. The loop stays
one thread; the child holds no socket of the crawl and writes no file. If it cannot
be started, or dies, the pages are scanned in the loop as before.

The child hands back only the URLs it has not handed back before (at that depth
or less, as a link or as a requisite): the loop would look each one up in its seen
set and drop it.  On the generated bench site that is ~2 of a page's 14 links.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

import crawlsel.crawl.links as extract

SNIFF_BYTES = 512  # WHATWG MIME sniffing looks at the first 512 bytes
_CSS = re.compile(r"^\s*text/css\b", re.I)
# Pages queued for the child beyond which the loop scans one itself.  One turn can
# complete as many pages as there are connections and submits them together: with 16,
# a turn of the bench's -c 32 had the loop scan half of such a burst while the child
# then sat idle (generated bench site, --per-host 32, 8 alternating runs: 2.32 -> 2.21 s).
STEAL_AT = 64
# URLs the child remembers having handed back; past this it forgets them all (the loop
# still drops what it has seen: this only saves it the work).
SENT_MAX = 200_000
# Results the child sends in one write at most: fewer wake-ups of the loop (the strace of
# a generated-site crawl: 4,166 epoll_wait calls with one write per page, 1,454 with 4).
RESULTS_AT_ONCE = 4
# glibc's mallopt parameters (malloc.h) and the values _keep_freed_heap gives them.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_HEAP_KEPT = 64 << 20  # freed heap kept up to this much, not given back to the kernel
_HEAP_PAD = 16 << 20  # each growth of the heap asks the kernel for this much more
_MMAP_FROM = 32 << 20  # blocks from this size on are mapped apart (glibc's own maximum)
_LENGTH = struct.Struct("!I")
_CHUNK = 256 * 1024


class PageScan(NamedTuple):
    links: list[str]  # pages to follow (none when the page says nofollow)
    requisites: list[str]
    follow: bool
    named: int  # links and requisites the page names (before the child drops repeats)


class ScanRequest(NamedTuple):
    key: int
    path: str
    base: str  # the URL that answered: links resolve against it
    content_type: str | None
    link_fields: tuple[tuple[str, str], ...] | None  # Link, Refresh, X-Robots-Tag
    depth: int = 0  # the depth of the page's links
    # Whether a URL handed back once may be left out later: only once the loop's answer
    # for a URL no longer changes (no seed still to come may widen the scope).
    repeats_dropped: bool = False


def scan_saved(request: ScanRequest, requisites: bool) -> PageScan | None:
    """The links of one saved page (HTML by its Content-Type or sniffed, or CSS), or None if
    it is neither. Never raises: a page that vanished or cannot be read names nothing."""
    try:
        return _scan(request, requisites)
    except Exception:  # noqa: BLE001  # hostile bytes must not end a crawl
        return PageScan([], [], True, 0)


def _scan(request: ScanRequest, requisites: bool) -> PageScan | None:
    base, path, content_type = request.base, request.path, request.content_type
    links: list[str] = []
    follow = True
    if request.link_fields:
        links, follow = extract.header_links(request.link_fields, base)
    if _CSS.match(content_type or "") or (content_type is None and path.endswith(".css")):
        found = extract.extract_css(_read(path), base) if requisites else []
        links = links if follow else []
        return PageScan(links, found, follow, len(links) + len(found))
    if not extract.looks_like_html(content_type, _read(path, SNIFF_BYTES) if not content_type else b""):
        return None
    page = extract.extract_file(path, base, requisites=requisites)
    follow = follow and page.follow
    links = links + page.links if follow else []
    return PageScan(links, page.requisites, follow, len(links) + len(page.requisites))


class _Sent:
    """What the child handed back: each URL with the least depth it was handed back at, as a
    link and as a requisite apart (a requisite may be fetched one step past --depth)."""

    def __init__(self) -> None:
        self._links: dict[str, int] = {}
        self._requisites: dict[str, int] = {}

    def drop_repeats(self, request: ScanRequest, scan: PageScan | None) -> PageScan | None:
        if scan is None or not request.repeats_dropped:
            return scan
        if len(self._links) + len(self._requisites) > SENT_MAX:
            self._links.clear()
            self._requisites.clear()
        depth = request.depth
        return scan._replace(
            links=_new(scan.links, depth, self._links),
            requisites=_new(scan.requisites, depth, self._requisites),
        )


def _new(urls: list[str], depth: int, sent: dict[str, int]) -> list[str]:
    new = []
    for url in urls:
        before = sent.get(url)
        if before is None or depth < before:
            sent[url] = depth
            new.append(url)
    return new


def _read(path: str, limit: int = -1) -> bytes:
    with open(path, "rb") as file:
        return file.read(limit)


def _keep_freed_heap() -> None:
    """Have glibc keep the memory of freed lexbor trees for the next page.

    By default glibc gives freed memory at the top of the heap back to the kernel past
    128 KiB, and a page's tree is ~17 times the page: each page then grew the heap
    again, and the kernel zeroed its pages anew (strace of a generated-site crawl: 22,342
    brk calls for 5,023 pages; the crawl's system time halved without them). The peak RSS
    hardly moves (real-site bench: 37.4 -> 38.0 MiB): memory is kept, not added, though
    blocks under 32 MiB freed by the loop (a grown seen set's old table) are kept too.
    Elsewhere than glibc this does nothing.
    """
    import ctypes  # only crawls scan pages: fetch and get do not import it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc
        return
    mallopt(_M_TRIM_THRESHOLD, _HEAP_KEPT)
    mallopt(_M_TOP_PAD, _HEAP_PAD)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)


class Scanner:
    """Scans submitted pages in a forked child (``fd`` turns readable as results arrive),
    or at once in this process (``inline``) on one core or when the child fails."""

    def __init__(self, requisites: bool, *, helper: bool | None = None) -> None:
        _keep_freed_heap()  # before the fork: the child inherits it
        self._requisites = requisites
        if helper is None:
            helper = _cores() > 1 and hasattr(os, "fork")
        self._want_helper = helper
        self._sock: socket.socket | None = None
        self._pid = 0
        self._out = bytearray()
        self._in = bytearray()
        self._pending: dict[int, ScanRequest] = {}
        self._done: list[tuple[int, PageScan | None]] = []

    @property
    def fd(self) -> int | None:
        return self._sock.fileno() if self._sock is not None else None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, request: ScanRequest) -> None:
        if self._sock is None and self._want_helper:
            self._start()
        if self._sock is None or len(self._pending) >= STEAL_AT:
            # No child, or one with enough queued to stay busy: a page parsed here
            # too keeps both cores at work (the child is the limit on large pages).
            self._done.append((request.key, scan_saved(request, self._requisites)))
            return
        self._pending[request.key] = request
        message = pickle.dumps(tuple(request), pickle.HIGHEST_PROTOCOL)  # plain tuples: a third of the cost
        self._out += _LENGTH.pack(len(message)) + message
        # At once, not at the turn's end: the child must not wait while the loop scans.
        # Results are read when the socket turns readable or the turn ends (collect):
        # a read here too found nothing in 4 of 10 pages (strace: 3,732 EAGAIN of 9,439).
        self._exchange(receive=False)

    def collect(self) -> list[tuple[int, PageScan | None]]:
        """Send what waits to be sent; the results that arrived (never blocks)."""
        if self._sock is not None:
            self._exchange()
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            _reap(self._pid)

    # --- the helper process ---------------------------------------------------------

    def _start(self) -> None:
        self._want_helper = False  # one try: a failed start scans in the loop
        try:
            ours, theirs = socket.socketpair()
            pid = os.fork()
        except OSError:
            return
        if pid == 0:  # the child
            code = 0
            try:
                ours.close()
                _serve(theirs, self._requisites)
            except BaseException:  # noqa: BLE001  # the crawl goes on without it
                code = 1
            finally:
                os._exit(code)  # no atexit handlers, no flush of the parent's buffers
        theirs.close()
        ours.setblocking(False)
        self._sock, self._pid = ours, pid

    def _exchange(self, *, receive: bool = True) -> None:
        sock = self._sock
        assert sock is not None
        try:
            if self._out:
                sent = sock.send(self._out)
                del self._out[:sent]
        except (BlockingIOError, InterruptedError):
            pass  # its buffer is full: the child is busy, and the results are read below
        except OSError:
            self._fail()
            return
        if not receive:
            return
        try:
            while True:
                data = sock.recv(_CHUNK)
                if not data:
                    raise ConnectionError("the scanning process ended")
                self._in += data
                if len(data) < _CHUNK:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._fail()
            return
        self._take_results()

    def _take_results(self) -> None:
        buffer = self._in
        start = 0
        while len(buffer) - start >= 4:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if len(buffer) - start - 4 < size:
                break
            key, scan = pickle.loads(buffer[start + 4 : start + 4 + size])
            start += 4 + size
            if self._pending.pop(key, None) is not None:
                self._done.append((key, scan if scan is None else PageScan(*scan)))
        del buffer[:start]

    def _fail(self) -> None:
        """The child is gone: what it held is scanned here, and so is all that follows."""
        self.close()
        pending, self._pending = self._pending, {}
        self._done.extend((key, scan_saved(request, self._requisites)) for key, request in pending.items())


def _serve(sock: socket.socket, requisites: bool) -> None:
    """The child's loop: scan the requests of each read, sending results back four at a
    time (and at the read's end), so that the loop wakes for a few pages, not each one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    keep = sock.fileno()
    os.closerange(3, keep)  # the crawl's sockets and files stay the parent's alone
    os.closerange(keep + 1, 1 << 16)
    sent = _Sent()
    for batch in _requests(sock):
        out = bytearray()
        for n, request in enumerate(batch, 1):
            scan = sent.drop_repeats(request, scan_saved(request, requisites))
            result = pickle.dumps((request.key, scan and tuple(scan)), pickle.HIGHEST_PROTOCOL)
            out += _LENGTH.pack(len(result)) + result
            if n % RESULTS_AT_ONCE == 0 or n == len(batch):
                sock.sendall(out)
                out.clear()


def _requests(sock: socket.socket) -> Iterable[list[ScanRequest]]:
    """The requests of each read from the loop, as they came."""
    buffer = bytearray()
    while True:
        data = sock.recv(_CHUNK)
        if not data:
            return
        buffer += data
        start = 0
        batch = []
        while len(buffer) - start >= 4:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if len(buffer) - start - 4 < size:
                break
            batch.append(ScanRequest(*pickle.loads(buffer[start + 4 : start + 4 + size])))
            start += 4 + size
        del buffer[:start]
        if batch:
            yield batch


def _cores() -> int:
    """The cores this process may run on (taskset and cgroups' cpusets narrow them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
