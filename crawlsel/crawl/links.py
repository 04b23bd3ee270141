"""Links and page requisites found in a fetched page, as absolute http(s) URLs.

``extract_html`` scans HTML bytes with one compiled regex tokenizer that follows the
WHATWG tokenizer where it matters for links (measured against selectolax/lexbor and
``html.parser`` on real pages: ``bench/links.py``, ``bench/README.md``): nothing is
taken from comments or from ``<script>``/``<style>``/``<textarea>``/``<title>``
bodies, quoted values may hold ``>``, values may be unquoted, names are
case-insensitive, entities in values are decoded by the attribute rules (``&amp;``
yes, ``&region=`` no), and a tag left open at the end of the input ends the scan.
``extract_css`` does stylesheets, ``header_links`` the Refresh, Link and X-Robots-Tag
headers, ``looks_like_html`` decides whether a body is scanned at all, and
``extract_file`` scans a saved page through mmap without reading it into memory.

URLs are resolved against ``<base href>`` (else the page URL) with ``urljoin``, their
fragments dropped, characters a URL may not hold percent-encoded (UTF-8), other
schemes dropped and duplicates removed in document order. No input bytes raise or
hang: work is linear in the input and capped at ``MAX_LINKS`` URLs a page.
"""

from __future__ import annotations

import codecs
import mmap
import re
from collections.abc import Iterable
from html import unescape
from html.entities import html5 as _ENTITIES
from typing import NamedTuple
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

# wget sets no limit; 100,000 distinct URLs is far beyond real pages (the Python docs'
# largest index has 17,242 <a> tags naming 487 distinct pages) and bounds a hostile one.
MAX_LINKS = 100_000
# Pages saved to disk are scanned up to this size (mapped, not read): beyond it a page
# is a data dump, not a document, and a scan would take seconds (bench/README.md).
MAX_FILE_BYTES = 256 * 1024 * 1024


class PageLinks(NamedTuple):
    links: list[str]  # pages to follow
    requisites: list[str]  # what the page needs to display: images, scripts, styles
    follow: bool  # False when the page's robots meta says nofollow or none


_WS = "\t\n\f\r "
# One token of the WHATWG tokenizer per match. A start or end tag's attributes are
# matched one at a time inside an atomic group (lookahead + backreference), so a
# tag that never closes costs one linear pass, not exponential backtracking.
_ATTR = rb"""(?=([^\t\n\f\r />][^\t\n\f\r />=]*(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*(?:"|\Z)|'[^']*(?:'|\Z)|[^\t\n\f\r >"'][^\t\n\f\r >]*|)?)?))"""
_TOKEN = re.compile(
    rb"<(?:"
    rb"([a-zA-Z][^\t\n\f\r />]*)((?:[\t\n\f\r /]*" + _ATTR + rb"\3)*)[\t\n\f\r /]*>"  # start tag
    rb"|/[a-zA-Z][^\t\n\f\r />]*(?:[\t\n\f\r /]*" + _ATTR + rb"\4)*[\t\n\f\r /]*>"  # end tag
    rb"|!--(?:-?>|.*?(?:--!?>|\Z))"  # comment, <!--> and <!---> included
    rb"|[!?/][^>]*(?:>|\Z)"  # doctype, bogus comment, </>
    rb"|(/?[a-zA-Z])"  # a tag with no ">" before the end: the rest is inside it
    rb")",
    re.DOTALL,
)
_ATTR_ITEM = re.compile(
    rb"""([^\t\n\f\r />][^\t\n\f\r />=]*)(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"([^"]*)"?|'([^']*)'?|([^\t\n\f\r >]*)))?"""
)
# Elements whose body is text, not markup (WHATWG 13.2.5: RAWTEXT, RCDATA, script data).
_RAW_END = {
    name: re.compile(rb"</" + name + rb"[\t\n\f\r />]", re.IGNORECASE)
    for name in (b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes")
}
_SCRIPT_DATA = re.compile(rb"(<!--)|(</script[\t\n\f\r />])", re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(rb"(-->)|(</script[\t\n\f\r />])|(<script[\t\n\f\r />])", re.IGNORECASE)
_SCRIPT_DOUBLE = re.compile(rb"(-->)|(</script[\t\n\f\r />])", re.IGNORECASE)
_LINK_TAGS = frozenset((b"a", b"area", b"frame", b"iframe", b"link", b"meta", b"base"))
_REQUISITE_RELS = frozenset(
    ("stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon")
    + ("preload", "modulepreload", "manifest")
)
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
_STYLE_ATTR = re.compile(rb"style", re.IGNORECASE)  # any element may have style="...url()..."
_CHARSET = re.compile(rb"""<meta[^>]+charset[\t\n\f\r ]*=[\t\n\f\r ]*["']?([-\w:.]+)""", re.IGNORECASE)
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
_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]+;?|#[0-9]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_LEGACY = sorted((name for name in _ENTITIES if not name.endswith(";")), key=len, reverse=True)
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]")
_SNIFF = re.compile(
    rb"[\t\n\f\r ]*<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)[ >]",
    re.IGNORECASE,
)
_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))


def _entity(match: re.Match[str]) -> str:
    """Decode one reference the way a browser does inside an attribute value (WHATWG 13.2.5.73)."""
    ref = match.group(1)
    if ref[0] == "#":
        return unescape(match.group(0))  # numeric: its range and replacement rules are right
    if ref[-1] == ";" and ref in _ENTITIES:
        return _ENTITIES[ref]
    following = match.string[match.end() : match.end() + 1]
    for name in _LEGACY:  # "&amp" and "&lt" may omit ";", but "&region=1" and "&copy=2" stay text
        if ref.startswith(name):
            if len(ref) > len(name) or following == "=":
                return match.group(0)
            return _ENTITIES[name]
    return match.group(0)


def _text(value: bytes, encoding: str) -> str:
    text = value.decode(encoding, "replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")  # as the tokenizer does
    return _ENTITY.sub(_entity, text) if "&" in text else text


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
                if "next" in rels or "prev" in rels or "previous" in rels:
                    self.add(self.links, href)
                if requisites and not _REQUISITE_RELS.isdisjoint(rels):
                    self.add(self.requisites, href)
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
            base = _absolute(self.base, url) or url
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
            if url is None and ":" not in raw and "/." not in raw and "//" not in raw:
                if raw[0] != "/":
                    if raw[0] != ".":
                        url = prefixes[0] + raw
                elif raw[1:2] != "/":
                    url = prefixes[1] + raw
            if url is not None:
                done[url] = None
                continue
        url = _absolute(raw, base)
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


def _absolute(raw: str, base: str) -> str | None:
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


def _scan(body: bytes | mmap.mmap, page: _Page, requisites: bool) -> None:
    """Feed ``page`` every start tag of ``body`` that can name a URL, and <style> bodies."""
    found = _CHARSET.search(body[:1024])
    encoding = "utf-8"
    if found is not None:
        try:
            encoding = codecs.lookup(found.group(1).decode("ascii")).name
        except (LookupError, UnicodeError):
            pass
        if encoding.startswith("utf-16"):  # WHATWG: a meta can only say utf-16 if it is wrong
            encoding = "utf-8"
    wanted = _REQUISITE_TAGS if requisites else _LINK_TAGS
    search = _TOKEN.search
    pos = 0
    while page.count < MAX_LINKS:
        match = search(body, pos)
        if match is None or match.group(5) is not None:
            break
        pos = match.end()
        raw_name = match.group(1)
        if raw_name is None:
            continue
        name = raw_name.lower()
        if name in wanted or (requisites and _STYLE_ATTR.search(match.group(2)) is not None):
            attrs: dict[str, str] = {}
            for item in _ATTR_ITEM.finditer(match.group(2)):
                key = item.group(1).lower().decode("ascii", "replace")
                if key not in attrs:  # WHATWG: a repeated attribute is dropped
                    value = item.group(2)
                    if value is None:
                        value = item.group(3)
                        if value is None:
                            value = item.group(4) or b""
                    attrs[key] = _text(value, encoding)
            page.tag(name.decode("ascii", "replace"), attrs, requisites)
        end = _RAW_END.get(name)
        if end is not None:
            if name == b"script":
                stop = _script_end(body, pos)
            else:
                closing = end.search(body, pos)
                stop = len(body) if closing is None else closing.start()
            if requisites and name == b"style":
                page.css(body[pos:stop].decode(encoding, "replace"))
            pos = stop
        elif name == b"plaintext":
            break  # the rest of the document is text


def _script_end(body: bytes | mmap.mmap, pos: int) -> int:
    """Where the script whose text starts at ``pos`` ends (WHATWG 13.2.5.4-13.2.5.25): after
    "<!--", a "<script" hides the next "</script" until "-->" (document.write of a script)."""
    state = _SCRIPT_DATA
    while True:
        found = state.search(body, pos)
        if found is None:
            return len(body)
        pos = found.end()
        if found.group(1) is not None:  # "<!--" from data, "-->" from the two others
            if state is _SCRIPT_DATA:
                state, pos = _SCRIPT_ESCAPED, found.start() + 2  # its "--" may start "-->"
            else:
                state = _SCRIPT_DATA
        elif found.group(2) is not None:  # "</script"
            if state is not _SCRIPT_DOUBLE:
                return found.start()
            state, pos = _SCRIPT_ESCAPED, pos - 1  # "</script>" ends double-escaping only
        else:  # "<script" while escaped
            state, pos = _SCRIPT_DOUBLE, pos - 1


def extract_html(body: bytes, url: str, *, requisites: bool = False) -> PageLinks:
    """Links to follow (and, if asked, requisites) of an HTML page fetched from ``url``."""
    page = _Page()
    _scan(body, page, requisites)
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
    """``extract_html`` on a page saved at ``path``, mapped rather than read (its first
    ``max_bytes`` only). Raises OSError if the file cannot be opened."""
    page = _Page()
    with open(path, "rb") as file:
        size = min(file.seek(0, 2), max_bytes)
        if size > 0:
            with mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as view:
                _scan(view, page, requisites)
    return page.result(url)
