"""``CookieStore``: cookies kept and sent back by RFC 6265's rules; Netscape cookie files in and out.

On only when asked (``-b FILE`` loads one, ``--cookie-jar FILE`` writes one at the
end).  ``receive`` stores a response's ``Set-Cookie`` fields (section 5.3: a
``Domain`` must domain-match the host that set it, else the cookie is ignored, so
no site sets cookies for another); ``header`` gives a request's ``Cookie`` value
(section 5.4: domain, path, ``Secure`` and expiry; longer paths first).  Cookies
are indexed by domain, so a lookup walks the host's labels, never the whole store:
``http.cookiejar`` scans every domain it holds per request, and needs urllib's
request and response objects.  There is no public-suffix list: a ``Domain`` of a
single label (``com``) is refused, ``co.uk`` is not.
"""

from __future__ import annotations

import calendar
import ipaddress
import os
import re
import tempfile
import time
from collections.abc import Iterator
from typing import NamedTuple

from crawlsel.models import Target

MAX_COOKIE_BYTES = 4096  # name + value + attributes: RFC 6265 6.1's minimum, what browsers keep
HEADER = "# Netscape HTTP Cookie File\n# Written by crawlsel; edit at your own risk.\n\n"
HTTPONLY_PREFIX = "#HttpOnly_"
INF = float("inf")


class Cookie(NamedTuple):
    name: str
    value: str
    domain: str  # lower case, no leading dot
    host_only: bool  # no Domain attribute: sent to this exact host only
    path: str
    secure: bool
    expires: float | None  # seconds since the epoch; None for a session cookie
    http_only: bool = False
    created: float = 0.0  # orders cookies of equal path length (RFC 6265 5.4 step 2)


class CookieStore:
    __slots__ = ("_domains", "_count", "_answers", "_suffixes")

    def __init__(self) -> None:
        self._domains: dict[str, dict[tuple[str, str], Cookie]] = {}
        self._count = 0  # a creation counter: stable order within one run
        # Per scheme and host, the cookies ``header`` chooses from, until one changes
        # or expires: most requests of a crawl find the same few cookies again.
        self._answers: dict[tuple[str, str], tuple[list[tuple[str, str]], str | None, float]] = {}
        self._suffixes: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return sum(len(cookies) for cookies in self._domains.values())

    def __iter__(self) -> Iterator[Cookie]:
        for cookies in self._domains.values():
            yield from cookies.values()

    def add(self, cookie: Cookie) -> None:
        """Store a cookie, replacing one of the same name, domain and path; an expired one deletes it."""
        cookies = self._domains.setdefault(cookie.domain, {})
        key = (cookie.name, cookie.path)
        old = cookies.pop(key, None)
        self._answers.clear()
        if cookie.expires is not None and cookie.expires <= time.time():
            return
        self._count += 1
        created = old.created if old is not None else float(self._count)
        cookies[key] = cookie._replace(created=created)

    # --- sending ----------------------------------------------------------------

    def header(self, target: Target) -> str | None:
        """The Cookie field value for a request, or None when no cookie applies."""
        if not self._domains:
            return None
        now = time.time()
        key = (target.scheme, target.host)
        entry = self._answers.get(key)
        if entry is None or now >= entry[2]:
            entry = self._answers[key] = self._candidates(target, now)
        candidates, every_path, _ = entry
        if every_path is not None:  # all of them have Path=/: the same answer for every page
            return every_path
        path = target.target.split("?", 1)[0]
        pairs = [
            pair for cookie_path, pair in candidates if cookie_path == "/" or _path_matches(path, cookie_path)
        ]
        return "; ".join(pairs) if pairs else None

    def _candidates(self, target: Target, now: float) -> tuple[list[tuple[str, str]], str | None, float]:
        """The host's unexpired cookies for its scheme as (path, "name=value") in sending order
        (longer paths first, then older), the answer if every one has Path=/, and when the first expires."""
        host = target.host
        suffixes = self._suffixes.get(host)
        if suffixes is None:
            suffixes = self._suffixes[host] = _suffixes(host)
        found: list[Cookie] = []
        for domain in suffixes:
            cookies = self._domains.get(domain)
            if not cookies:
                continue
            for cookie in list(cookies.values()):
                if cookie.expires is not None and cookie.expires <= now:
                    del cookies[(cookie.name, cookie.path)]
                elif not (cookie.host_only and domain != host) and (
                    target.scheme == "https" or not cookie.secure
                ):
                    found.append(cookie)
        found.sort(key=lambda c: (-len(c.path), c.created))
        candidates = [(c.path, f"{c.name}={c.value}") for c in found]
        every_path = "; ".join(pair for _, pair in candidates) if all(c.path == "/" for c in found) else None
        until = min((c.expires for c in found if c.expires is not None), default=INF)
        return candidates, every_path or None, until

    # --- receiving --------------------------------------------------------------

    def receive(self, target: Target, headers: list[tuple[bytes, bytes]]) -> None:
        """Store the cookies of a response head's Set-Cookie fields (invalid or foreign ones are ignored)."""
        for name, value in headers:
            if len(name) == 10 and name.lower() == b"set-cookie":
                cookie = parse_set_cookie(value.decode("latin-1"), target)
                if cookie is not None:
                    self.add(cookie)

    # --- files ------------------------------------------------------------------

    def load(self, path: str) -> None:
        """Add the cookies of a Netscape cookie file (curl's and wget's format); ValueError names a bad line."""
        with open(path, encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, 1):
                line = line.rstrip("\r\n")
                http_only = line.startswith(HTTPONLY_PREFIX)
                if http_only:
                    line = line[len(HTTPONLY_PREFIX) :]
                if not line.strip() or line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) == 6:  # an empty value may lose its tab
                    fields.append("")
                if len(fields) != 7 or not fields[4].lstrip("-").isdigit():
                    raise ValueError(
                        f"{path}, line {number}: not a Netscape cookie line (7 tab-separated fields)"
                    )
                domain, subdomains, cookie_path, secure, expires, name, value = fields
                when = int(expires)
                self.add(
                    Cookie(
                        name,
                        value,
                        domain.lstrip(".").lower(),
                        subdomains.upper() != "TRUE",
                        cookie_path or "/",
                        secure.upper() == "TRUE",
                        None if when == 0 else float(when),
                        http_only,
                    )
                )

    def save(self, path: str) -> None:
        """Write every unexpired cookie to ``path`` atomically (a temporary file, then a rename)."""
        now = time.time()
        lines = [HEADER]
        for cookie in sorted(self, key=lambda c: (c.domain, c.path, c.name)):
            if cookie.expires is not None and cookie.expires <= now:
                continue
            domain = cookie.domain if cookie.host_only else "." + cookie.domain
            prefix = HTTPONLY_PREFIX if cookie.http_only else ""
            fields = (
                prefix + domain,
                "FALSE" if cookie.host_only else "TRUE",
                cookie.path,
                "TRUE" if cookie.secure else "FALSE",
                str(0 if cookie.expires is None else int(cookie.expires)),
                cookie.name,
                cookie.value,
            )
            lines.append("\t".join(fields) + "\n")
        folder = os.path.dirname(os.path.abspath(path))
        fd, temporary = tempfile.mkstemp(prefix=".cookies-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.writelines(lines)
            os.chmod(temporary, 0o600)  # cookies are credentials: as curl, not world-readable
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise


def parse_set_cookie(field: str, target: Target) -> Cookie | None:
    """One Set-Cookie field (RFC 6265 5.2 and 5.3) as a cookie, or None to ignore it."""
    if len(field) > MAX_COOKIE_BYTES:
        return None
    pair, *attributes = field.split(";")
    if "=" not in pair:
        return None  # RFC 6265 5.2 step 2 (browsers' nameless cookies are left out)
    name, value = (part.strip(" \t") for part in pair.split("=", 1))
    if not name or any(ord(c) < 0x20 or c == "\x7f" for c in name + value):
        return None
    host = target.host
    domain, path, secure, http_only, expires, max_age = "", "", False, False, None, None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key, raw = key.strip(" \t").lower(), raw.strip(" \t")
        if key == "expires":
            expires = parse_date(raw)
        elif key == "max-age" and re.fullmatch(r"-?\d+", raw):
            max_age = int(raw)
        elif key == "domain":
            domain = raw.lstrip(".").lower()
        elif key == "path":
            path = raw if raw.startswith("/") else ""
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
    if max_age is not None:  # Max-Age wins over Expires (5.3 step 3)
        expires = time.time() + max_age if max_age > 0 else 0.0
    host_only = not domain
    if domain:
        if "." not in domain or not domain_matches(host, domain):
            return None  # a site cannot set cookies for another, nor for a whole top-level domain
    else:
        domain = host
    return Cookie(name, value, domain, host_only, path or default_path(target), secure, expires, http_only)


def domain_matches(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: the host is the domain, or a name ending in "." + domain (never an IP address)."""
    if host == domain:
        return True
    return host.endswith("." + domain) and not _is_ip(host)


def default_path(target: Target) -> str:
    """RFC 6265 5.1.4: the request path up to its last "/", or "/"."""
    path = target.target.split("?", 1)[0]
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else "/"


def _path_matches(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4: equal, or a prefix ending at a "/"."""
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


def _suffixes(host: str) -> list[str]:
    """The host and each parent domain it may have cookies from (an IP address only itself)."""
    if _is_ip(host):
        return [host]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_MONTHS = {m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), 1)}
_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")


def parse_date(text: str) -> float | None:
    """RFC 6265 5.1.1's lenient cookie-date algorithm; None for a date it rejects."""
    clock = day = month = year = None
    for token in _DELIMITERS.split(text):
        if not token:
            continue
        if clock is None and (match := re.match(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?!\d)", token)):
            clock = tuple(int(g) for g in match.groups())
        elif day is None and (match := re.match(r"(\d{1,2})(?!\d)", token)):
            day = int(match.group(1))
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS[token[:3].lower()]
        elif year is None and (match := re.match(r"(\d{2,4})(?!\d)", token)):
            year = int(match.group(1))
    if clock is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = clock
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
