"""One URL normalisation (RFC 3986 6.2.2), shared by the list reader, redirects and the writer.

Two spellings of one resource must be one request and one file: what is sent,
what is deduplicated and what is named on disk all come from the request-target
made here.  Pure functions, no I/O.

``split`` turns an absolute http(s) URL into scheme, host, port and a normalised
request-target (or raises ``InvalidURL``); ``normalize`` joins them back into one
canonical string, for sets of URLs already seen.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from crawlsel.errors import InvalidURL
from crawlsel.models import DEFAULT_PORTS, authority

# Characters that may stay as they are in a request-target (RFC 3986 pchar, "/", "?", "%").
_TARGET_SAFE = "/?%:@!$&'()*+,;=-._~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Lower-case scheme and host, a port, and a target made only of characters that
# need no encoding (no "#", no "%" escapes, no IPv6 literal): split's fast path.
_PLAIN_URL = re.compile(
    r"(https?)://((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
    r"(?::([0-9]{1,5}))?((?:/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?)\Z"
)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 2.3: an escape of one of these means the same URL decoded (6.2.2.2).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def split(url: str) -> tuple[str, str, int, str]:
    """Scheme, ASCII host, port and normalised request-target of an absolute http(s) URL."""
    plain = _PLAIN_URL.match(url)
    if plain is not None:
        # The common case, a URL with nothing to encode: skip urlsplit and quote.
        scheme, host, port, target = plain.groups()
        number = int(port) if port else DEFAULT_PORTS[scheme]
        if 0 < number < 65536:
            if not target.startswith("/"):
                target = "/" + target  # "" or "?query"
            elif "/." in target:  # cheap test first: most paths have no dot segment
                target = normalize_target(target)
            return scheme, host, number, target
    return _split_slow(url)


def _split_slow(url: str) -> tuple[str, str, int, str]:
    if _CONTROL.search(url):
        raise InvalidURL("contains control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise InvalidURL(f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise InvalidURL("not an absolute http(s) URL")
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported scheme {scheme!r} (only http and https)")
    if "[" in parts.netloc:
        # Python 3.10's urlsplit does not check a bracketed host; 3.11 does.
        literal = parts.netloc.partition("[")[2].partition("]")[0]
        try:
            ipaddress.IPv6Address(literal.split("%", 1)[0])
        except ValueError:
            raise InvalidURL("malformed URL (invalid IPv6 address)") from None
    if "@" in parts.netloc:
        raise InvalidURL("user names and passwords in URLs are not supported")
    if " " in parts.netloc:
        raise InvalidURL("spaces in the host name")
    host = parts.hostname or ""
    if not host:
        raise InvalidURL("no host name")
    try:
        port = parts.port
    except ValueError:
        raise InvalidURL("invalid port") from None
    if port == 0:
        raise InvalidURL("invalid port 0")
    host = ascii_host(host)
    # Spaces and non-ASCII characters are percent-encoded as browsers do; existing
    # escapes are kept, except those of unreserved characters (RFC 3986 6.2.2.2).
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if "?" in url.split("#", 1)[0]:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    if not target.startswith("/"):
        target = "/" + target
    return scheme, host, port or DEFAULT_PORTS[scheme], normalize_target(target)


def ascii_host(host: str) -> str:
    """The host as sent and compared: IDNA ("xn--") for an international name."""
    if host.isascii():
        return host
    if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise InvalidURL("host name too long")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidURL("host name is not a valid international domain name") from None


def normalize(url: str) -> str:
    """The canonical spelling of an absolute http(s) URL: equal strings, one resource.

    RFC 3986 6.2.2 and 6.2.3: lower-case scheme and host, IDNA host, default port
    dropped, empty path as "/", escapes of unreserved characters decoded, other
    escapes in upper case, dot segments removed, fragment dropped.
    """
    scheme, host, port, target = split(url)
    return f"{scheme}://{authority(scheme, host, port)}{target}"


def normalize_target(target: str) -> str:
    """A request-target ("/path?query") with escapes normalised and dot segments removed."""
    if "%" not in target and "/." not in target:
        return target  # nothing to do, and most targets are like this
    path, sep, query = target.partition("?")
    if "%" in path:
        path = normalize_escapes(path)
    if "%" in query:
        query = normalize_escapes(query)
    return remove_dot_segments(path) + sep + query


def normalize_escapes(text: str) -> str:
    """Decode escapes of unreserved characters; upper-case the hex of the others."""
    return _ESCAPE.sub(_normal_escape, text)


def _normal_escape(match: re.Match[str]) -> str:
    ch = chr(int(match.group(1), 16))
    return ch if ch in _UNRESERVED else "%" + match.group(1).upper()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: "/a/./b/../c" is "/a/c"; never above "/"."""
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")[1:]
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == ".":
            if i == last:
                out.append("")
        elif segment == "..":
            if out:
                out.pop()
            if i == last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)
