"""Links and page requisites found in a fetched page, as absolute http(s) URLs.

``extract_html`` parses a page with selectolax's lexbor backend (a C HTML5 parser) and
applies one set of rules to the elements it finds; a page larger than
``TREE_MAX_BYTES``, and a large page saved to disk (``extract_file``, through mmap),
goes instead to ``htmlscan``, a regex tokenizer over bytes with flat memory. Both
agree with html5lib on every page of the Python docs and of a hostile set
(``bench/links.py``, ``bench/README.md``): nothing comes from comments or from
``<script>``/``<style>``/``<textarea>``/``<title>`` bodies, values may be unquoted or
single-quoted, names are case-insensitive, entities decode by the attribute rules
(``&amp;`` yes, ``&region=`` no). ``extract_css`` does stylesheets, ``header_links``
the Refresh, Link and X-Robots-Tag headers, ``looks_like_html`` decides whether a body
is HTML at all.

URLs are resolved against ``<base href>`` (else the page URL) with ``urljoin``, their
fragments dropped, characters a URL may not hold percent-encoded (UTF-8), other
schemes dropped and duplicates removed in document order. No input bytes raise or
hang: work is linear in the input and capped at ``MAX_LINKS`` URLs a page.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterable
from typing import NamedTuple, cast
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from crawlsel.crawl.htmlscan import charset, scan

# wget sets no limit; 100,000 distinct URLs is far beyond real pages (the Python docs'
# largest index has 17,242 <a> tags naming 487 distinct pages) and bounds a hostile one.
MAX_LINKS = 100_000
# Pages saved to disk are scanned up to this size (mapped, not read): beyond it a page
# is a data dump, not a document, and a scan would take seconds (bench/README.md).
MAX_FILE_BYTES = 256 * 1024 * 1024
# Up to this size a page is parsed by lexbor, 2.6x the regex scanner's pages/s on real
# pages; its tree costs about 17 times the page (863 MiB for a 50 MB page), so larger
# pages, in memory or on disk, go to the scanner, whose memory stays flat: the Python
# docs' two pages over 1 MiB took a crawl's peak RSS from 40 to 62 MiB (bench/README.md).
TREE_MAX_BYTES = 1024 * 1024


class PageLinks(NamedTuple):
    links: list[str]  # pages to follow
    requisites: list[str]  # what the page needs to display: images, scripts, styles
    follow: bool  # False when the page's robots meta says nofollow or none


_WS = "\t\n\f\r "
_LINK_TAGS = frozenset((b"a", b"area", b"frame", b"iframe", b"link", b"meta", b"base"))
_REQUISITE_RELS = frozenset(
    ("stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon")
    + ("preload", "modulepreload", "manifest")
)
# <link> rels that name no document to crawl: connection hints, and nofollow.
_NOT_LINK_RELS = frozenset(("dns-prefetch", "preconnect", "prefetch", "prerender", "nofollow", "pingback"))
# Plain requisite attributes per element; srcset, style and link rel are handled apart.
_REQUISITE_ATTRS = {
    "img": ("src",),
    "script": ("src",),
    "object": ("data",),
    "embed": ("src",),
    "source": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "body": ("background",),
    "track": ("src",),
}
_REQUISITE_TAGS = _LINK_TAGS | {name.encode() for name in _REQUISITE_ATTRS} | {b"input", b"source"}
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_CSS_URL = re.compile(
    # A CSS string ends at a newline and an unquoted url() at "(", quotes or blanks (CSS
    # Syntax 4.3.6): besides being right, that stops each try at the next "url(", so a
    # run of unclosed ones is scanned once, not once per "url(".
    r"""url\([\t\n\f\r ]*(?:"([^"\n]*)"|'([^'\n]*)'|([^)('"\t\n\f\r ]*))[\t\n\f\r ]*\)"""
    r"""|@import[\t\n\f\r ]+(?:"([^"\n]*)"|'([^'\n]*)')""",
    re.IGNORECASE,
)
_REFRESH = re.compile(
    r"""[\t\n\f\r ]*[0-9.]+[\t\n\f\r ]*[;,]?[\t\n\f\r ]*(?:url[\t\n\f\r ]*=[\t\n\f\r ]*)?(.*)""",
    re.IGNORECASE | re.DOTALL,
)
_LINK_HEADER = re.compile(r"""<([^<>]*)>((?:[\t ]*;[\t ]*[^;,"]*(?:"[^"]*")?)*)""")
_REL_PARAM = re.compile(r"""(?:^|;)[\t ]*rel[\t ]*=[\t ]*(?:"([^"]*)"|([^\t ;,]*))""", re.IGNORECASE)
# Characters that need no escape anywhere in a URL, and reference shapes urljoin would only
# concatenate (no dot segment, no scheme, no empty query, no ";" or "//" that urljoin
# drops): _resolve's fast path.
_PLAIN = r"[A-Za-z0-9\-._~!$&'()*+,=@%]"
_PLAIN_REF = re.compile(rf"(?:{_PLAIN}|[/:])+(?:\?(?:{_PLAIN}|[/:?])+)?\Z")
_PLAIN_ABSOLUTE = re.compile(
    rf"https?://[a-z0-9.\-]+(?::[0-9]+)?(?:/(?:{_PLAIN}|[/:])*)?(?:\?(?:{_PLAIN}|[/:?])+)?\Z"
)
_PLAIN_BASE = re.compile(rf"(https?://[a-z0-9.\-]+(?::[0-9]+)?)((?:/(?:{_PLAIN}|[/:])*)?)(?:\?|\Z)")
_SRCSET_URL = re.compile(r"[\t\n\f\r ,]*([^\t\n\f\r ]+)")
_SRCSET_DESCRIPTORS = re.compile(r"(?:[^,(]|\([^)]*\)?)*")
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]")
_SNIFF = re.compile(
    rb"[\t\n\f\r ]*<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)[ >]",
    re.IGNORECASE,
)
_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))


class _Page:
    """What one page names, collected in document order and resolved at the end (a later
    ``<base href>`` still applies to every URL of the document)."""

    __slots__ = ("base", "links", "requisites", "follow", "count")

    def __init__(self) -> None:
        self.base: str | None = None
        self.links: dict[str, None] = {}
        self.requisites: dict[str, None] = {}
        self.follow = True
        self.count = 0

    def add(self, into: dict[str, None], raw: str) -> None:
        if "#" in raw:  # dropped before resolving: "page.html#a" and "page.html#b" are one URL
            raw = raw.partition("#")[0]
        if raw and self.count < MAX_LINKS and raw not in into:
            into[raw] = None
            self.count += 1

    def tag(self, name: str, attrs: dict[str, str], requisites: bool) -> None:
        """Note the URLs of one start tag: ``name`` and attribute names lower-case, values decoded."""
        if name in ("a", "area"):
            if "href" in attrs and "nofollow" not in attrs.get("rel", "").lower().split():
                self.add(self.links, attrs["href"])
        elif name in ("frame", "iframe"):
            if "src" in attrs:
                self.add(self.links, attrs["src"])
        elif name == "link":
            href = attrs.get("href")
            if href is not None:
                rels = attrs.get("rel", "").lower().split()
                if not _REQUISITE_RELS.isdisjoint(rels):
                    if requisites:
                        self.add(self.requisites, href)
                elif _NOT_LINK_RELS.isdisjoint(rels):
                    self.add(self.links, href)  # next, prev, search, alternate...: as wget -r
        elif name == "meta":
            content = attrs.get("content", "")
            if attrs.get("http-equiv", "").strip().lower() == "refresh":
                target = _refresh_url(content)
                if target:
                    self.add(self.links, target)
            elif attrs.get("name", "").strip().lower() == "robots":
                words = {word.strip() for word in content.lower().split(",")}
                if "nofollow" in words or "none" in words:
                    self.follow = False
        elif name == "base":
            if self.base is None and "href" in attrs:
                self.base = attrs["href"]
        if requisites:
            for attr in _REQUISITE_ATTRS.get(name, ()):
                if attr in attrs:
                    self.add(self.requisites, attrs[attr])
            if "srcset" in attrs and name in ("img", "source"):
                for raw in _srcset(attrs["srcset"]):
                    self.add(self.requisites, raw)
            if name == "input" and attrs.get("type", "").strip().lower() == "image" and "src" in attrs:
                self.add(self.requisites, attrs["src"])
            if "style" in attrs:
                self.css(attrs["style"])

    def css(self, text: str) -> None:
        for raw in _css_urls(text):
            self.add(self.requisites, raw)

    def result(self, url: str) -> PageLinks:
        base = url
        if self.base is not None:
            base = absolute_url(self.base, url) or url
        links = _resolve(self.links, base) if self.follow else []
        return PageLinks(links, _resolve(self.requisites, base), self.follow)


def _resolve(raws: Iterable[str], base: str) -> list[str]:
    done: dict[str, None] = {}
    prefixes = _prefixes(base)
    for raw in raws:
        # Most references are a plain relative path, absolute path or http(s) URL: joined
        # by concatenation they give what urljoin gives, at a tenth of its cost.
        if prefixes is not None and _PLAIN_REF.match(raw) is not None:
            url = raw if raw[0] == "h" and _PLAIN_ABSOLUTE.match(raw) else None
            if url is None and ":" not in raw and "//" not in raw:
                if raw[0] == ".":
                    url = _dotted(raw, prefixes)
                elif "/." in raw:
                    pass
                elif raw[0] != "/":
                    url = prefixes[0] + raw
                elif raw[1:2] != "/":
                    url = prefixes[1] + raw
            if url is not None:
                done[url] = None
                continue
        url = absolute_url(raw, base)
        if url is not None:
            done[url] = None
    return list(done)


def _prefixes(base: str) -> tuple[str, str] | None:
    """What a plain relative path and a plain absolute path are appended to (for a plain base)."""
    match = _PLAIN_BASE.match(base)
    if match is None:
        return None
    origin, path = match.groups()
    if "//" in path:
        return None
    return origin + path[: path.rfind("/") + 1] if path else origin + "/", origin


def _dotted(raw: str, prefixes: tuple[str, str]) -> str | None:
    """A plain reference that starts with "./" or "../" segments, joined by popping the base's
    folders (RFC 3986 5.2.4: no higher than the root), or None for urljoin to do."""
    ups = start = 0
    while True:
        if raw.startswith("../", start):
            ups, start = ups + 1, start + 3
        elif raw.startswith("./", start):
            start += 2
        else:
            break
    rest = raw[start:]
    if rest[:1] == "." or "/." in rest:
        return None  # "..", "./.", "a/../b": left to urljoin
    folder, origin = prefixes
    path = folder[len(origin) :]
    for _ in range(ups):
        path = path[: path.rfind("/", 0, len(path) - 1) + 1] or "/"
    return origin + path + rest


def absolute_url(raw: str, base: str) -> str | None:
    """``raw`` resolved against ``base``, without fragment, as a valid http(s) URL string, or None."""
    raw = raw.strip(_WS).partition("#")[0]
    if not raw:
        return None  # "" and "#top" name this document, which the crawl has
    if "\t" in raw or "\n" in raw or "\r" in raw:
        raw = raw.replace("\t", "").replace("\n", "").replace("\r", "")  # the URL parser drops them
    try:
        url = urljoin(base, raw).partition("#")[0]
        scheme = url.partition(":")[0].lower()
        if scheme != "http" and scheme != "https":
            return None
        if _URL_UNSAFE.search(url) is None:
            return url
        parts = urlsplit(url)
        netloc = parts.netloc
        if not netloc.isascii():
            netloc = netloc.encode("idna").decode("ascii")
        safe = "/:@!$&'()*+,;=%~"
        path, query = quote(parts.path, safe=safe), quote(parts.query, safe=safe + "?")
        return urlunsplit((parts.scheme, quote(netloc, safe=safe + "[]"), path, query, ""))
    except (ValueError, UnicodeError):  # "http://[::1", a host IDNA refuses
        return None


def _refresh_url(content: str) -> str | None:
    """The URL of a refresh value, "5; url=/next" (WHATWG 4.2.5.3), or None (a plain reload)."""
    match = _REFRESH.match(content)
    if match is None:
        return None
    target = match.group(1).strip(_WS)
    if target[:1] in ("'", '"'):
        target = target[1:].partition(target[0])[0]
    return target or None


def _srcset(value: str) -> list[str]:
    """The URLs of a srcset ("a.png 1x, b.png 2x"; WHATWG 4.8.4.3.9): a URL may hold commas."""
    urls: list[str] = []
    pos = 0
    while len(urls) < MAX_LINKS:
        candidate = _SRCSET_URL.match(value, pos)
        if candidate is None:
            break
        url = candidate.group(1)
        pos = candidate.end()
        if url.endswith(","):  # "a.png, b.png": no descriptors
            url = url.rstrip(",")
        else:
            pos = _SRCSET_DESCRIPTORS.match(value, pos).end()  # type: ignore[union-attr]  # matches ""
        if url:
            urls.append(url)
    return urls


def _css_urls(text: str) -> list[str]:
    if "url(" not in text.lower() and "@import" not in text.lower():
        return []
    text = _CSS_COMMENT.sub(" ", text)
    found = (
        next(group for group in match.groups() if group is not None) for match in _CSS_URL.finditer(text)
    )
    return [url for url in found if url.strip(_WS)]


# Broad selectors, filtered by name in _Page.tag: lexbor matches a few attribute tests
# several times faster than a list of element[attribute] pairs (bench/README.md).  In
# one :is() they are one walk of the tree, half the time of a comma list, which also
# gave an element matching two of them twice.  Only the four rare attributes are paired
# with the elements _Page.tag reads them from (srcset, data, poster, background): the
# same URLs, 2-3 % less time a page (generated bench site 134 -> 131 us, Python docs 1,483 -> 1,444 us).
_LINK_SELECTOR = ":is([href], frame[src], iframe[src], meta)"
_REQUISITE_SELECTOR = ":is([href], [src], img[srcset], source[srcset], object[data], video[poster], body[background], [style], meta, style)"


def _parse(body: bytes, page: _Page, requisites: bool) -> None:
    """Hand ``page`` the elements of lexbor's tree that can name a URL, in document order."""
    encoding = charset(body)
    tree = LexborHTMLParser(body.decode(encoding, "replace"))
    for node in tree.css(_REQUISITE_SELECTOR if requisites else _LINK_SELECTOR):
        if page.count >= MAX_LINKS:
            break
        name = node.tag or ""
        attrs = node.attributes
        if None in attrs.values():  # a name without a value: its value is ""
            attrs = {key: value or "" for key, value in attrs.items()}
        page.tag(name, cast("dict[str, str]", attrs), requisites)
        if name == "style" and requisites:
            page.css(node.text(deep=True))


def extract_html(body: bytes, url: str, *, requisites: bool = False) -> PageLinks:
    """Links to follow (and, if asked, requisites) of an HTML page fetched from ``url``."""
    page = _Page()
    if len(body) <= TREE_MAX_BYTES:
        _parse(body, page, requisites)
    else:
        scan(body, page, _REQUISITE_TAGS if requisites else _LINK_TAGS, requisites, MAX_LINKS)
    return page.result(url)


def extract_css(body: bytes, url: str) -> list[str]:
    """The URLs a stylesheet imports or uses (url(...), @import "..."), absolute."""
    return _resolve(dict.fromkeys(_css_urls(body.decode("utf-8", "replace"))[:MAX_LINKS]), url)


def header_links(headers: Iterable[tuple[str, str]], url: str) -> tuple[list[str], bool]:
    """Links named by response headers (Refresh, Link rel=next/prev) and whether to follow any."""
    raws: dict[str, None] = {}
    follow = True
    for name, value in headers:
        name = name.lower()
        if name == "refresh":
            target = _refresh_url(value)
            if target:
                raws[target] = None
        elif name == "link":
            for match in _LINK_HEADER.finditer(value):
                rel = _REL_PARAM.search(match.group(2))
                if rel is not None:
                    rels = (rel.group(1) or rel.group(2) or "").lower().split()
                    if "next" in rels or "prev" in rels or "previous" in rels:
                        raws[match.group(1)] = None
        elif name == "x-robots-tag" and not _robots_follow(value):
            follow = False
    return (_resolve(raws, url) if follow else []), follow


def _robots_follow(value: str) -> bool:
    """False if an X-Robots-Tag value says nofollow or none to every crawler; a group after
    "otherbot:" is for that crawler only (Google's syntax)."""
    agent = False
    for token in value.lower().split(","):
        head, colon, rest = token.partition(":")
        if colon and head.strip() not in ("max-snippet", "max-image-preview", "max-video-preview"):
            if head.strip() != "unavailable_after":
                agent, token = True, rest
        if not agent and token.strip() in ("nofollow", "none"):
            return False
    return True


def looks_like_html(content_type: str | None, start: bytes) -> bool:
    """Whether a body is HTML: by its Content-Type, or sniffed (WHATWG MIME Sniffing 7.1) only
    when the server sent none."""
    if content_type and content_type.strip():
        return content_type.partition(";")[0].strip().lower() in _HTML_TYPES
    return _SNIFF.match(start[:512]) is not None


def extract_file(
    path: str, url: str, *, requisites: bool = False, max_bytes: int = MAX_FILE_BYTES
) -> PageLinks:
    """``extract_html`` on a page saved at ``path`` (its first ``max_bytes`` only); a large
    one is mapped and scanned rather than read. Raises OSError if it cannot be opened.
    (os calls: four system calls a page, where a file object made nine.)"""
    fd = os.open(path, os.O_RDONLY)  # not inherited (PEP 446)
    try:
        size = min(os.fstat(fd).st_size, max_bytes)
        if size <= TREE_MAX_BYTES or size == 0:  # (an empty file cannot be mapped)
            return extract_html(os.read(fd, size), url, requisites=requisites)  # a file reads whole
        page = _Page()
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
            scan(view, page, _REQUISITE_TAGS if requisites else _LINK_TAGS, requisites, MAX_LINKS)
    finally:
        os.close(fd)
    return page.result(url)
