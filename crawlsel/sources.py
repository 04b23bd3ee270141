"""Read URL lists lazily and turn each line into a ``Target`` or an ``InvalidLine``.

Lists are read line by line as the dispatcher asks for more work, so a file of a
million URLs is never held in memory.  Nothing here touches the network.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

from crawlsel.errors import InvalidURL, SourceError
from crawlsel.models import InvalidLine, Target
from crawlsel.urls import split

MAX_LINE_BYTES = 64 * 1024  # a URL this long is a broken list, not a page (curl: 8 KiB paths)
_BOM = b"\xef\xbb\xbf"


class WaitForInput(NamedTuple):
    """Yielded when a pipe has no complete line yet: wait until ``fd`` is readable.

    This is how ``tail -f urls | crawlsel fetch -`` starts fetching before its
    input ends without ever blocking the event loop on a read.  (A NamedTuple, as
    the other records: the dataclasses module loads inspect, 5 ms of every start.)
    """

    fd: int


Record = Target | InvalidLine | WaitForInput


def parse_url(text: str, *, line: int = 0, index: int = 0) -> Target:
    """Validate and normalise one absolute http(s) URL, or raise ``InvalidURL``.

    The request-target is normalised (crawlsel.urls) so that what is sent, what is
    deduplicated and what is saved agree; ``url`` stays as written, for records.
    """
    scheme, host, port, target = split(text)
    return Target(text, scheme, host, port, target, line, index)


def argument_records(urls: Iterable[str]) -> list[Target | InvalidLine]:
    """URLs given on the command line, each a target or the reason it is not one."""
    records: list[Target | InvalidLine] = []
    for index, url in enumerate(urls):
        try:
            records.append(parse_url(url, index=index))
        except InvalidURL as exc:
            records.append(InvalidLine(url, str(exc), "command line", 0, index))
    return records


def read_targets(sources: Iterable[str], stdin: BinaryIO | None = None) -> Iterator[Record]:
    """Yield one record per non-blank, non-comment line of each source, in order.

    ``-`` is standard input.  Every source is checked for readability before the
    first line is yielded, so that a typo in the last file name fails the run at start.
    """
    names = list(sources)
    for name in names:
        if name != "-":
            check_readable(name)
    index = 0
    for name in names:
        if name == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            pipe = _pipe_fd(stream)
            lines = _read_pipe(pipe) if pipe is not None else _read_lines(stream, "<stdin>")
            records = _lines_to_records(lines, "<stdin>", index)
        else:
            records = _read_file(name, index)
        for record in records:
            if not isinstance(record, WaitForInput):
                index = record.index + 1
            yield record


def check_readable(name: str) -> None:
    if not os.path.exists(name):
        raise SourceError(f"{name}: no such file")
    if os.path.isdir(name):
        raise SourceError(f"{name}: is a directory")
    if not os.access(name, os.R_OK):
        raise SourceError(f"{name}: permission denied")


def _read_file(name: str, first_index: int) -> Iterator[Record]:
    try:
        stream = open(name, "rb")
    except OSError as exc:
        raise SourceError(f"{name}: {exc.strerror}") from None
    with stream:
        yield from _lines_to_records(_read_lines(stream, name), name, first_index)


def _lines_to_records(lines: Iterable[bytes | WaitForInput], name: str, index: int) -> Iterator[Record]:
    line_no = 0
    for raw in lines:
        if isinstance(raw, WaitForInput):
            yield raw
            continue
        line_no += 1
        if line_no == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > MAX_LINE_BYTES:
            yield InvalidLine(
                raw[:80].decode("utf-8", "replace"), "line longer than 64 KiB", name, line_no, index
            )
            index += 1
            continue
        try:
            text = raw.decode("utf-8").strip(" \t\r\n")
        except UnicodeDecodeError:
            yield InvalidLine(raw.decode("utf-8", "replace").strip(), "not valid UTF-8", name, line_no, index)
            index += 1
            continue
        if not text or text.startswith("#"):
            continue
        try:
            yield parse_url(text, line=line_no, index=index)
        except InvalidURL as exc:
            yield InvalidLine(text, str(exc), name, line_no, index)
        index += 1


def _read_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    # readline with a limit, so that a file with no newline at all is not read whole.
    while True:
        try:
            raw = stream.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"{name}: {exc.strerror or exc}") from None
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Swallow the rest of the overlong line so the next one starts clean.
            while True:
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield raw


def _pipe_fd(stream: BinaryIO) -> int | None:
    """The descriptor of a pipe or socket (which a selector can watch), else None."""
    try:
        fd = stream.fileno()
    except (OSError, io.UnsupportedOperation, AttributeError):
        return None
    mode = os.fstat(fd).st_mode
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


def _read_pipe(fd: int) -> Iterator[bytes | WaitForInput]:
    """Lines of a pipe, read without blocking; ``WaitForInput`` when none is complete."""
    was_blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    pending = b""
    skipping = False  # inside an overlong line, already reported
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                yield WaitForInput(fd)
                continue
            if not data:
                if pending and not skipping:
                    yield pending
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if skipping:
                    skipping = False
                    continue
                yield line + b"\n"
            if len(pending) > MAX_LINE_BYTES and not skipping:
                yield pending  # reported as too long; the rest of the line is dropped
                skipping = True
            if skipping:
                pending = b""
    finally:
        os.set_blocking(fd, was_blocking)
