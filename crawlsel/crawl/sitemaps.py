"""Sitemaps (sitemaps.org 0.9) read into the URLs and nested sitemaps they name.

``parse_sitemap`` takes the body of a fetched sitemap and returns a ``Sitemap``: the
``<urlset><url><loc>`` values, the ``<sitemapindex><sitemap><loc>`` values (to fetch
next) and, when the document was refused or could not be read to its end, one line
saying why.  It does no I/O and raises on no input bytes.  Formats, told apart by
content and never by name: gzip (magic bytes 1f 8b) around any of them; XML in the
sitemaps.org namespace or in none (other elements, such as the image: and news:
extensions, are ignored); RSS 2.0 (``<item><link>``) and Atom (``<entry><link href>``),
which Google also reads as sitemaps; and the text format, one UTF-8 URL a line.

Safety: gzip is inflated in bounded steps and stops at ``MAX_SITEMAP_BYTES``, so a
bomb costs at most that much work and one step of memory; expat is fed as the bytes
are inflated (no tree is built) and a document with a DOCTYPE is refused before its
declarations are read, so no entity is ever defined, expanded or fetched (billion
laughs, external entities); the five predefined entities, character references and
CDATA still decode.  Only absolute http(s) URLs are kept, at most ``MAX_URLS``; on an
error the lists hold what was read before it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from itertools import chain
from typing import NamedTuple
from urllib.parse import urljoin
from xml.parsers import expat

# sitemaps.org: "no more than 50,000 URLs and must be no larger than 50MB (52,428,800
# bytes)" uncompressed; the same limits hold for a sitemap index and its sitemaps.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_URLS = 50_000
# sitemaps.org asks for URLs under 2,048 characters (scope.MAX_URL_BYTES drops longer
# ones later); this only bounds the text collected for one <loc> or one line.
MAX_LOC_CHARS = 8192
_STEP = 256 * 1024  # bytes inflated and parsed at a time
# An absolute http(s) URL: a host (a name or a bracketed IP literal), a numeric port if
# any, and no raw space or control character (which a URL would have percent-encoded).
_HTTP_URL = re.compile(
    r"(?i:https?)://(?:[^\x00-\x20\x7f/?#@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^\x00-\x20\x7f/?#@\[\]:]+)"
    r"(?::([0-9]{0,5}))?(?:[/?#][^\x00-\x20\x7f]*)?\Z"
)

_SITEMAP_NS = (
    "",
    "http://www.sitemaps.org/schemas/sitemap/0.9",
    "http://www.google.com/schemas/sitemap/0.84",  # before sitemaps.org (2006)
    "http://www.google.com/schemas/sitemap/0.9",
)
_ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")  # 1.0, 0.3
# Root element -> (namespaces its elements may have, path down to the URL, into urls?).
_KINDS = {
    "urlset": (_SITEMAP_NS, ("urlset", "url", "loc"), True),
    "sitemapindex": (_SITEMAP_NS, ("sitemapindex", "sitemap", "loc"), False),
    "rss": (("",), ("rss", "channel", "item", "link"), True),
    "feed": (_ATOM_NS, ("feed", "entry", "link"), True),
}


class Sitemap(NamedTuple):
    urls: list[str]  # <urlset><url><loc> values, absolute, stripped, in order
    sitemaps: list[str]  # <sitemapindex><sitemap><loc> values (nested sitemaps to fetch next)
    error: str | None  # one line for the user when refused or unreadable, else None


class _Stop(Exception):
    """Raised from a handler to end expat's parse once the reason is recorded."""


def _http_url(loc: str, base: str = "") -> str | None:
    loc = urljoin(base, loc.strip()) if base else loc.strip()
    match = _HTTP_URL.match(loc) if len(loc) <= MAX_LOC_CHARS else None
    return loc if match and int(match[1] or 0) <= 65535 else None  # urlsplit().port raises past it


def _inflate(data: bytes, errors: list[str]) -> Iterator[bytes]:
    """``data``, gunzipped if it is gzip, in steps of at most _STEP and MAX_SITEMAP_BYTES in all."""
    total, gzipped = 0, False
    while data[:2] == b"\x1f\x8b":  # gzip members may follow one another (RFC 1952 2.2)
        inflater, gzipped = zlib.decompressobj(16 + zlib.MAX_WBITS), True
        while data and not inflater.eof:
            try:
                # max_length: a bomb inflates one step at a time and stops at the cap
                step = inflater.decompress(data, min(_STEP, MAX_SITEMAP_BYTES + 1 - total))
            except zlib.error as exc:
                errors.append(f"gzip data damaged: {exc}")
                return
            data, total = inflater.unconsumed_tail, total + len(step)
            if total > MAX_SITEMAP_BYTES:
                errors.append("larger than 50 MiB uncompressed")
                return
            yield step
        if not inflater.eof:
            errors.append("gzip data truncated")
            return
        data = inflater.unused_data  # anything but another member is ignored, as gzip -d does
    if not gzipped:
        for start in range(0, min(len(data), MAX_SITEMAP_BYTES), _STEP):
            yield data[start : min(start + _STEP, MAX_SITEMAP_BYTES)]
        if len(data) > MAX_SITEMAP_BYTES:
            errors.append("larger than 50 MiB uncompressed")


class _Reader:
    """expat handlers that note URLs; only a depth and a matched-path length are kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.urls: list[str] = []
        self.sitemaps: list[str] = []
        self.error: str | None = None
        self.depth = self.matched = 0  # elements open; how many of them are on the path
        self.text: list[str] | None = None  # the <loc> being read
        self.size = 0
        self.spaces: tuple[str, ...] = ()
        self.path: tuple[str, ...] = ()
        self.into = self.urls

    def stop(self, error: str) -> None:
        self.error = error
        raise _Stop

    def doctype(self, name: str, *_: object) -> None:
        if name.lower() == "html":
            self.stop("not a sitemap: an HTML page (<!DOCTYPE html>)")
        self.stop(f"refused: a DOCTYPE (<!DOCTYPE {name}>); sitemaps declare no entities")

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        space, _, name = tag.rpartition(" ")
        if self.depth == 0:
            if name not in _KINDS or space not in _KINDS[name][0]:
                self.stop(f"not a sitemap: root element <{name}>" + (f" in {space}" if space else ""))
            self.spaces, self.path, into_urls = _KINDS[name]
            self.into = self.urls if into_urls else self.sitemaps
            self.matched = 1
        elif self.depth == self.matched < len(self.path):
            if name == self.path[self.depth] and space in self.spaces:
                self.matched += 1
        self.depth += 1
        if self.matched == self.depth == len(self.path):
            if self.path[0] != "feed":
                self.text, self.size = [], 0
            elif attrs.get("rel", "alternate") == "alternate" and "href" in attrs:
                self.add(attrs["href"], self.url)  # Atom allows relative references

    def end(self, tag: str) -> None:
        if self.matched == self.depth:
            if self.text is not None:
                self.add("".join(self.text))
                self.text = None
            self.matched -= 1
        self.depth -= 1

    def chars(self, data: str) -> None:
        if self.text is not None and self.size <= MAX_LOC_CHARS:
            self.text.append(data)
            self.size += len(data)

    def add(self, loc: str, base: str = "") -> None:
        found = _http_url(loc, base)
        if found is not None:
            if len(self.urls) + len(self.sitemaps) == MAX_URLS:
                self.stop("more than 50,000 URLs: the rest ignored")
            self.into.append(found)


def _parse_xml(chunks: Iterator[bytes], url: str) -> Sitemap:
    reader = _Reader(url)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = reader.doctype
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.chars
    parser.buffer_text = True  # a <loc> in one call, not one per line or entity
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _Stop:
        pass
    except expat.ExpatError as exc:
        reader.error = f"XML error at line {exc.lineno}: {expat.ErrorString(exc.code)}"
    return Sitemap(reader.urls, reader.sitemaps, reader.error)


def _parse_text(chunks: Iterator[bytes]) -> Sitemap:
    urls: list[str] = []
    tail, cut = b"", False
    for chunk in chain(chunks, (b"\n",)):
        *lines, tail = (tail + chunk).split(b"\n")
        if cut and lines:  # the end of a line too long to be a URL
            lines[0], cut = b"", False
        if len(tail) > MAX_LOC_CHARS:  # so a line never grows past the cap
            tail, cut = b"", True
        for line in lines:
            found = _http_url(line.decode("utf-8", "replace"))
            if found is None or "\ufffd" in found:
                continue
            if len(urls) == MAX_URLS:
                return Sitemap(urls, [], "more than 50,000 URLs: the rest ignored")
            urls.append(found)
    return Sitemap(urls, [], None if urls else "not a sitemap: text with no http(s) URL on any line")


def parse_sitemap(data: bytes, *, url: str = "") -> Sitemap:
    """The URLs and nested sitemaps named by the sitemap ``data`` fetched from ``url``."""
    errors: list[str] = []
    chunks = _inflate(data, errors)
    start = b""
    for chunk in chunks:  # the format is told by the first byte that is not a space
        start = (start + chunk).lstrip(b" \t\r\n")
        if start:
            break
    else:
        return Sitemap([], [], errors[0] if errors else "empty document")
    rest = chain((start,), chunks)
    if start.startswith((b"<", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):  # BOMs: UTF-8, UTF-16
        found = _parse_xml(rest, url)
    else:
        found = _parse_text(rest)
    # a stop in inflating is the cause of whatever the parser then said about the end
    return found._replace(error=errors[0]) if errors else found
