"""``--convert-links``: a finished crawl made browsable offline, as ``wget -k`` does.

Each saved HTML page and CSS file has its links rewritten: a link to a page the crawl
saved becomes a relative path to that file (names with ``%3F`` included: the path is
percent-escaped, so a browser's decoding finds the file), a link to a page not saved
becomes the absolute URL.  Only the bytes of the link values change (attribute
values, CSS ``url()`` and ``@import`` strings, a refresh's URL); a file with nothing
to change is not written, a changed one is replaced atomically.  ``<base href>`` is
pointed at the page's own folder, since every link is now relative to the file.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple
from urllib.parse import quote

from crawlsel.crawl.htmlscan import attributes, charset, decoded, tags
from crawlsel.crawl.links import (
    _CSS_URL,
    _REFRESH,
    _SRCSET_DESCRIPTORS,
    _SRCSET_URL,
    absolute_url,
    looks_like_html,
)
from crawlsel.urls import normalize

_CSS_URL_BYTES = re.compile(_CSS_URL.pattern.encode(), re.IGNORECASE)
# What would end the value early, per group of _CSS_URL: url("..."), url('...'), url(...),
# @import "...", @import '...'.
_DQ, _SQ = [('"', "%22")], [("'", "%27")]
_CSS_ESCAPES = {1: _DQ, 2: _SQ, 3: _DQ + _SQ + [("(", "%28"), (")", "%29")], 4: _DQ, 5: _SQ}
_URL_ATTRS = frozenset(("href", "src", "data", "poster", "background"))
_TAGS = frozenset(
    b"a area link base frame iframe img script object embed source video audio track input body table td th"
    b" meta".split()
)
# Characters left as they are in a relative path: RFC 3986 pchar without "%" (escaped,
# so a name holding "%3F" stays that name) and without the quotes.
_PATH_SAFE = "/-._~!$&()*+,;=:@"
MAX_CONVERT_BYTES = 64 * 1024 * 1024  # larger files are left as saved


class Saved(NamedTuple):
    path: str  # where the page was saved
    url: str  # the URL that answered: the base of its relative links
    kind: str | None  # "html", "css", or None for other files


class Mirror:
    """What a crawl saved (URL -> file), noted from its records, and the conversion."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}
        self._docs: list[Saved] = []

    def note(self, url: str, final_url: str | None, path: str | None, content_type: str | None) -> None:
        """One record of the crawl; only a saved page counts."""
        if path is None:
            return
        for each in (url, final_url or url):
            try:
                self._files.setdefault(normalize(each), path)
            except ValueError:
                pass
        media = (content_type or "").partition(";")[0].strip().lower()
        kind = "css" if media == "text/css" or (not media and path.endswith(".css")) else None
        if kind is None and (media in ("text/html", "application/xhtml+xml") or not media):
            kind = "html" if media or _sniffed_html(path) else None
        self._docs.append(Saved(path, final_url or url, kind))

    def convert(self, on_error: Callable[[str, str], None]) -> int:
        """Rewrite every saved HTML and CSS file; the number changed. ``on_error(path, why)``
        hears of a file that could not be read or replaced (it stays as saved)."""
        changed = 0
        for doc in self._docs:
            if doc.kind is None:
                continue
            try:
                with open(doc.path, "rb") as file:
                    body = file.read(MAX_CONVERT_BYTES + 1)
                if len(body) > MAX_CONVERT_BYTES:
                    continue
                rewrite = convert_html if doc.kind == "html" else convert_css
                converted = rewrite(body, doc.url, functools.partial(self._link, here=doc.path))
                if converted != body:
                    _replace(doc.path, converted)
                    changed += 1
            except OSError as exc:
                on_error(doc.path, exc.strerror or str(exc))
        return changed

    def _link(self, url: str, here: str) -> str:
        """What a link to ``url`` (absolute, maybe with a fragment) becomes in the file ``here``."""
        url, hash_, fragment = url.partition("#")
        try:
            saved = self._files.get(normalize(url))
        except ValueError:
            saved = None
        tail = hash_ + fragment
        if saved is None:
            return url + tail
        relative = os.path.relpath(saved, os.path.dirname(here) or ".").replace(os.sep, "/")
        relative = quote(relative, safe=_PATH_SAFE)
        if ":" in relative.partition("/")[0]:
            relative = "./" + relative  # "a:b.html" would read as a scheme
        return relative + tail


def _sniffed_html(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return looks_like_html(None, file.read(512))
    except OSError:
        return False


def _replace(path: str, data: bytes) -> None:
    temp = f"{path}.convert.part"
    try:
        with open(temp, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


Link = Callable[[str], str]


def _splice(body: bytes, edits: Iterable[tuple[int, int, bytes]]) -> bytes:
    out, last = [], 0
    for start, end, text in sorted(edits):
        out += [body[last:start], text]
        last = end
    return b"".join(out) + body[last:] if out else body


def _converted(raw: str, base: str, link: Link) -> str | None:
    """A link value rewritten, or None to leave it (no http(s) URL, or this document)."""
    stripped = raw.strip("\t\n\f\r ")
    if not stripped or stripped.startswith("#"):
        return None
    url = absolute_url(stripped, base)
    if url is None:
        return None
    fragment = stripped.partition("#")[2]
    new = link(url + ("#" + fragment if fragment else ""))
    return None if new == raw else new


def _html_value(text: str, encoding: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#39;")
    return escaped.encode(encoding, "xmlcharrefreplace")


def convert_css(body: bytes, base: str, link: Link, encoding: str = "utf-8") -> bytes:
    """A CSS text with its url() and @import targets rewritten."""
    return _splice(body, _css_edits(body, 0, len(body), base, link, encoding))


def _css_edits(
    body: bytes, start: int, end: int, base: str, link: Link, encoding: str
) -> Iterable[tuple[int, int, bytes]]:
    for match in _CSS_URL_BYTES.finditer(body, start, end):
        group = next(g for g in range(1, 6) if match.group(g) is not None)
        new = _converted(match.group(group).decode(encoding, "replace"), base, link)
        if new is not None:
            for char, escape in _CSS_ESCAPES[group]:
                new = new.replace(char, escape)
            yield match.start(group), match.end(group), new.encode(encoding, "replace")


def convert_html(body: bytes, url: str, link: Link) -> bytes:
    """An HTML page with its link values rewritten; every other byte as it was."""
    encoding = charset(body)
    base = url
    found = list(tags(body, _TAGS, True))
    for name, tag, _, _ in found:  # a <base href> applies to the whole document
        if name == "base" and tag is not None:
            href = next((decoded(v, encoding) for k, v, _, _ in attributes(tag) if k == "href"), None)
            if href is not None:
                base = absolute_url(href, url) or url
                break
    edits: list[tuple[int, int, bytes]] = []
    for name, tag, start, end in found:
        if tag is None:
            edits += _css_edits(body, start, end, base, link, encoding)
        else:
            edits += _tag_edits(name, tag, base, link, encoding)
    return _splice(body, edits)


def _tag_edits(
    name: str, tag: re.Match[bytes], base: str, link: Link, encoding: str
) -> list[tuple[int, int, bytes]]:
    edits: list[tuple[int, int, bytes]] = []
    seen: set[str] = set()
    items = list(attributes(tag))
    is_refresh = name == "meta" and any(
        k == "http-equiv" and decoded(v, encoding).strip().lower() == "refresh" for k, v, _, _ in items
    )
    for key, raw, start, end in items:
        if key in seen:
            continue  # a repeated attribute is dropped by browsers: left as it is
        seen.add(key)
        value = decoded(raw, encoding)
        if name == "base" and key == "href":
            new: str | None = "./"
        elif key in _URL_ATTRS and name != "meta":
            new = _converted(value, base, link)
        elif key == "srcset" and name in ("img", "source"):
            new = _srcset(value, base, link)
        elif key == "style":
            css = value.encode("utf-8")
            spliced = _splice(css, _css_edits(css, 0, len(css), base, link, "utf-8"))
            new = spliced.decode("utf-8") if spliced != css else None
        elif key == "content" and is_refresh:
            new = _refresh(value, base, link)
        else:
            new = None
        if new is not None and new != value:
            edits.append((start, end, _html_value(new, encoding)))
    return edits


def _srcset(value: str, base: str, link: Link) -> str | None:
    out, last, pos = [], 0, 0
    while (candidate := _SRCSET_URL.match(value, pos)) is not None and candidate.group(1):
        url_end = candidate.end(1)
        raw = candidate.group(1)
        if raw.endswith(","):
            raw, url_end = raw.rstrip(","), candidate.start(1) + len(raw.rstrip(","))
            pos = candidate.end()
        else:
            pos = _SRCSET_DESCRIPTORS.match(value, candidate.end()).end()  # type: ignore[union-attr]
        new = _converted(raw, base, link)
        if new is not None:
            out += [value[last : candidate.start(1)], new]
            last = url_end
        if pos >= len(value):
            break
    return "".join(out) + value[last:] if out else None


def _refresh(content: str, base: str, link: Link) -> str | None:
    match = _REFRESH.match(content)
    if match is None or not match.group(1).strip():
        return None
    start = match.start(1) + len(match.group(1)) - len(match.group(1).lstrip("\t\n\f\r "))
    target = content[start:].rstrip("\t\n\f\r ")
    quote_char = target[:1] if target[:1] in ("'", '"') else ""
    if quote_char:
        target = target[1:].partition(quote_char)[0]
        start += 1
    new = _converted(target, base, link)
    return None if new is None else content[:start] + new + content[start + len(target) :]
