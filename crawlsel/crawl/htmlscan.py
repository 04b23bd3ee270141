"""A tokenizer for finding URLs in HTML, one compiled regex over bytes (or an mmap).

It follows the WHATWG tokenizer (13.2.5) wherever a link depends on it: comments,
RAWTEXT/RCDATA and (escaped) script bodies are skipped, quoted values may hold ``>``,
values may be unquoted, names are case-insensitive, a repeated attribute is dropped,
entities in values are decoded by the attribute rules, and a tag still open at the end
of the input ends the scan (what follows is inside it). It builds no tree, so its memory
is flat and it can scan a page mapped from disk; ``links`` uses it for pages too large
for a tree (``bench/README.md``). Work is linear in the input on any bytes.
"""

from __future__ import annotations

import codecs
import mmap
import re
from collections.abc import Iterator
from html import unescape
from html.entities import html5 as _ENTITIES
from typing import Protocol


class TagSink(Protocol):
    count: int

    def tag(self, name: str, attrs: dict[str, str], requisites: bool) -> None: ...

    def css(self, text: str) -> None: ...


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
_CHARSET = re.compile(rb"""<meta[^>]+charset[\t\n\f\r ]*=[\t\n\f\r ]*["']?([-\w:.]+)""", re.IGNORECASE)
_STYLE_ATTR = re.compile(rb"style", re.IGNORECASE)  # any element may have style="...url()..."
_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]+;?|#[0-9]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_LEGACY = sorted((name for name in _ENTITIES if not name.endswith(";")), key=len, reverse=True)


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


def charset(body: bytes | mmap.mmap) -> str:
    """The codec a ``<meta charset>`` in the first 1,024 bytes names (WHATWG prescan), else UTF-8."""
    found = _CHARSET.search(body[:1024])
    if found is None:
        return "utf-8"
    try:
        encoding = codecs.lookup(found.group(1).decode("ascii")).name
    except (LookupError, UnicodeError):
        return "utf-8"
    return "utf-8" if encoding.startswith("utf-16") else encoding  # a meta saying utf-16 is wrong


def scan(body: bytes | mmap.mmap, page: TagSink, wanted: frozenset[bytes], styles: bool, limit: int) -> None:
    """Hand ``page`` each start tag named in ``wanted`` (and, if ``styles``, each with a style
    attribute, and each <style> body) until the end or until ``page.count`` reaches ``limit``."""
    encoding = charset(body)
    for name, tag, start, stop in tags(body, wanted, styles):
        if page.count >= limit:
            break
        if tag is None:
            page.css(body[start:stop].decode(encoding, "replace"))
            continue
        attrs: dict[str, str] = {}
        for item in _ATTR_ITEM.finditer(tag.group(2)):  # attributes() inlined: the hot loop
            key = item.group(1).lower().decode("ascii", "replace")
            if key not in attrs:  # WHATWG: a repeated attribute is dropped
                value = item.group(2)
                if value is None:
                    value = item.group(3)
                    if value is None:
                        value = item.group(4) or b""
                attrs[key] = _text(value, encoding)
        page.tag(name, attrs, styles)


def tags(
    body: bytes | mmap.mmap, wanted: frozenset[bytes], styles: bool
) -> Iterator[tuple[str, re.Match[bytes] | None, int, int]]:
    """The start tags named in ``wanted`` (with ``styles``, also those with a style
    attribute) as (name, match, 0, 0), where ``match.group(2)`` holds the attributes; and
    with ``styles`` each <style> body as ("style", None, start, end)."""
    search = _TOKEN.search
    pos = 0
    while True:
        match = search(body, pos)
        if match is None or match.group(5) is not None:
            return
        pos = match.end()
        raw_name = match.group(1)
        if raw_name is None:
            continue
        name = raw_name.lower()
        if name in wanted or (styles and _STYLE_ATTR.search(match.group(2)) is not None):
            yield name.decode("ascii", "replace"), match, 0, 0
        end = _RAW_END.get(name)
        if end is not None:
            if name == b"script":
                stop = _script_end(body, pos)
            else:
                closing = end.search(body, pos)
                stop = len(body) if closing is None else closing.start()
            if styles and name == b"style":
                yield "style", None, pos, stop
            pos = stop
        elif name == b"plaintext":
            return  # the rest of the document is text


def attributes(tag: re.Match[bytes]) -> Iterator[tuple[str, bytes, int, int]]:
    """A start tag's attributes as (lower-case name, raw value, value start, value end),
    the offsets in the scanned body; a value given without quotes or none has no quotes
    around its span, a quoted one's span is inside them."""
    offset = tag.start(2)
    for item in _ATTR_ITEM.finditer(tag.group(2)):
        key = item.group(1).lower().decode("ascii", "replace")
        group = 2 if item.group(2) is not None else 3 if item.group(3) is not None else 4
        value = item.group(group)
        if value is None:
            yield key, b"", offset + item.end(), offset + item.end()
        else:
            yield key, value, offset + item.start(group), offset + item.end(group)


def decoded(value: bytes, encoding: str) -> str:
    """An attribute value as a browser reads it: entities decoded."""
    return _text(value, encoding)


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
