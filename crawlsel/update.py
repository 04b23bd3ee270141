"""``--update``: fetch again only what changed since it was saved (wget -N, done with
the validators servers send).

When a page is saved, its ETag and Last-Modified are noted; the next run with
``--update`` sends them back as ``If-None-Match`` / ``If-Modified-Since`` for a page
whose file is still there, and a 304 keeps the file (a record with ``unchanged``).
The validators of one output folder live in one small index file at its top,
``.crawlsel-validators`` (tab-separated: URL, ETag, Last-Modified, path), read at the
start and replaced atomically at the end: no sidecar file per page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from crawlsel.http11 import ResponseHead

INDEX_NAME = ".crawlsel-validators"


class Saved(NamedTuple):
    etag: str
    last_modified: str
    path: str


class Validators:
    """The validators of the pages saved under one output folder."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / INDEX_NAME
        self._pages: dict[str, Saved] = {}
        self._changed = False
        self._touched: dict[str, Saved | None] = {}  # this run's news (None: forgotten), for a parent

    @classmethod
    def load(cls, folder: Path) -> Validators:
        """The folder's index; an absent or unreadable one is an empty start (all fetched)."""
        validators = cls(folder)
        try:
            with open(validators.file, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    fields = line.rstrip("\n").split("\t")
                    if len(fields) == 4:
                        validators._pages[fields[0]] = Saved(*fields[1:])
        except OSError:
            pass
        return validators

    def conditions(self, url: str) -> bytes:
        """The conditional fields of a request for ``url``: none if its file is gone."""
        saved = self._pages.get(url)
        if saved is None or not os.path.isfile(saved.path):
            return b""
        lines = b""
        if saved.etag:
            lines += b"If-None-Match: " + saved.etag.encode("latin-1") + b"\r\n"
        if saved.last_modified:
            lines += b"If-Modified-Since: " + saved.last_modified.encode("latin-1") + b"\r\n"
        return lines

    def unchanged(self, url: str) -> str | None:
        """The file of a page a 304 answered for, if one was asked about."""
        saved = self._pages.get(url)
        return saved.path if saved is not None and os.path.isfile(saved.path) else None

    def saw(self, url: str, path: str, head: ResponseHead) -> None:
        """A page saved at ``path``: its validators for the next run (none: forgotten)."""
        etag = _field(head, "etag")
        modified = _field(head, "last-modified")
        if etag or modified:
            self._pages[url] = self._touched[url] = Saved(etag, modified, path)
            self._changed = True
        elif self._pages.pop(url, None) is not None:
            self._touched[url] = None
            self._changed = True

    def changes(self) -> dict[str, Saved | None]:
        """What this run learned, for the one index a fetch --workers parent writes."""
        return dict(self._touched)

    def apply(self, changes: dict[str, Saved | None]) -> None:
        """A worker's ``changes()`` (its hosts are its own: no two workers touch one URL)."""
        for url, saved in changes.items():
            if saved is not None:
                self._pages[url] = saved
            else:
                self._pages.pop(url, None)
            self._changed = True

    def save(self) -> None:
        """Replace the index file atomically (nothing changed: left as it is). Raises OSError."""
        if not self._changed:
            return
        temp = self.file.with_name(self.file.name + ".part")
        try:
            with open(temp, "w", encoding="utf-8", errors="replace") as out:
                for url, saved in self._pages.items():
                    out.write(f"{url}\t{saved.etag}\t{saved.last_modified}\t{saved.path}\n")
            os.replace(temp, self.file)
        except OSError:
            temp.unlink(missing_ok=True)
            raise
        self._changed = False


def _field(head: ResponseHead, name: str) -> str:
    """A validator as sent; one holding a tab or a line end is not kept (the index is TSV)."""
    value = (head.header(name) or "").strip()
    return "" if any(c in value for c in "\t\r\n") else value
