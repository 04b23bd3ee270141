"""``CrawlState``: a crawl's frontier kept in an SQLite file (``crawl --state FILE``).

Every URL the crawl will fetch is a row (its depth, the page it was found on,
how) marked done when it ends; the rows are written in one transaction per
``flush``, which the dispatcher asks for once per turn of the loop, and at the
end.  After Ctrl-C, SIGTERM or ``kill -9`` the same command reads the file back:
the URLs not done are queued again and every row is in the seen set.  A page
saved in the turn the process died is not fetched again either: a crawl with
``--state`` skips URLs whose file exists (and reads their links from it).
SQLite in WAL mode, from the standard library: a commit per turn costs one
write, not one per URL.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from crawlsel.errors import SourceError

SCHEMA = """
CREATE TABLE IF NOT EXISTS url (
    id INTEGER PRIMARY KEY,  -- the order found: a resumed crawl stays breadth first
    url TEXT NOT NULL UNIQUE,
    depth INTEGER NOT NULL,
    parent TEXT,
    via TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
"""


class StateError(SourceError):
    """The state file cannot be opened, read or written (its message names it); a
    source of work that failed, as an unreadable URL list is."""


class Row(NamedTuple):
    url: str
    depth: int
    parent: str | None
    via: str
    done: bool


class CrawlState:
    __slots__ = ("path", "_db", "_queued", "_done")

    def __init__(self, path: str) -> None:
        self.path = path
        self._queued: list[tuple[str, int, str | None, str]] = []
        self._done: list[tuple[str]] = []
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process kill
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot use as a crawl state file ({exc})") from None

    def rows(self) -> Iterator[Row]:
        """What an earlier run of the crawl left: every URL, done or not, in the order found."""
        try:
            for url, depth, parent, via, done in self._db.execute(
                "SELECT url, depth, parent, via, done FROM url ORDER BY id"
            ):
                yield Row(url, depth, parent, via, bool(done))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot read the crawl state ({exc})") from None

    def queued(self, url: str, depth: int, parent: str | None, via: str) -> None:
        self._queued.append((url, depth, parent, via))

    def done(self, url: str) -> None:
        self._done.append((url,))

    def flush(self) -> None:
        """Write what the last turn learned, in one transaction."""
        if not self._queued and not self._done:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR IGNORE INTO url (url, depth, parent, via) VALUES (?, ?, ?, ?)", self._queued
                )
                self._db.executemany("UPDATE url SET done = 1 WHERE url = ?", self._done)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot write the crawl state ({exc})") from None
        self._queued.clear()
        self._done.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()


def remove_stale_parts(root: str) -> int:
    """Delete the temporary files a killed run left under ``root``; how many.

    The writer names them ``.crawlsel-PID-N.part``; one whose process is gone
    will never be renamed into place.
    """
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if not (name.startswith(".crawlsel-") and name.endswith(".part")):
                continue
            pid = name.split("-")[1]
            if pid.isdigit() and not _alive(int(pid)):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
