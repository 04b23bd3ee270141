"""robots.txt answers for one origin, from the record of its fetch (RFC 9309).

The file is fetched through the crawl's own loop like any page; this module only
reads what came back.  protego parses it with Google's rules (longest match,
``*`` and ``$``), which ``urllib.robotparser`` gets wrong.  RFC 9309 2.3.1:
a 4xx (or too many redirects) means no rules, a 5xx or an unreachable server
means the whole origin is disallowed.
"""

from __future__ import annotations

from crawlsel.models import FetchResult

# RFC 9309 2.5: crawlers must parse at least the first 500 KiB.
PARSED_BYTES = 512 * 1024


def product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched against: "crawlsel" of "crawlsel/1.0 (...)"."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0] or "*"


class RobotsRules:
    """What one origin's robots.txt allows this crawler; immutable once built."""

    __slots__ = ("_parser", "_agent", "_everything", "reason")

    def __init__(self, text: str | None, agent: str, *, everything: bool = True, reason: str = "") -> None:
        self._agent = agent
        self._everything = everything  # with no text: allow (or refuse) every URL
        self.reason = reason  # why there are no rules, for the summary
        self._parser = None
        if text is not None:
            from protego import Protego  # only a crawl imports it

            self._parser = Protego.parse(text)

    def allows(self, url: str) -> bool:
        if self._parser is None:
            return self._everything
        return bool(self._parser.can_fetch(url, self._agent))

    @property
    def delay(self) -> float | None:
        """Seconds between requests the file asks for: Crawl-delay, or Request-rate."""
        if self._parser is None:
            return None
        delay = self._parser.crawl_delay(self._agent)
        if delay is not None:
            return float(delay)
        rate = self._parser.request_rate(self._agent)
        if rate is not None and rate.requests > 0:
            return rate.seconds / rate.requests
        return None

    @property
    def sitemaps(self) -> list[str]:
        return [] if self._parser is None else list(self._parser.sitemaps)


def rules_from(result: FetchResult, agent: str) -> RobotsRules:
    """The rules a robots.txt fetch gave: its text, or none (allow or refuse all)."""
    if result.error is None and result.path is not None:
        try:
            with open(result.path, "rb") as file:
                data = file.read(PARSED_BYTES)
        except OSError as exc:
            return RobotsRules(None, agent, everything=False, reason=f"unreadable ({exc.strerror})")
        return RobotsRules(data.decode("utf-8", "replace"), agent)
    status = result.status
    if result.error is None or (status is not None and 300 <= status < 500):
        return RobotsRules(None, agent, reason=f"HTTP {status}" if status else "")
    return RobotsRules(None, agent, everything=False, reason=result.error or "")
