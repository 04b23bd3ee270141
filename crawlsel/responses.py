"""What a response's status and fields mean for its URL: the message of a status that
ends it, the Location of a redirect, the delay of a Retry-After."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawlsel.http11 import ResponseHead
    from crawlsel.models import Config

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def status_message(head: ResponseHead, config: Config) -> str:
    text = f"HTTP {head.status} {head.reason}".rstrip()
    if head.status in REDIRECT_STATUSES:
        if not config.follow:
            return f"{text} (not followed: --no-follow)"
        to = location(head)
        if to is None:
            return f"{text} without a Location"
        if not to:
            return f"{text} with an empty Location"
    return text


def location(head: ResponseHead) -> str | None:
    """The Location field without its surrounding whitespace; None when absent.

    An empty one is not a reference to the same URL (that would be a redirect
    loop): it is a redirect that says nowhere, so the response is final.
    """
    value = head.header("location")
    return None if value is None else value.strip(" \t")


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110 10.2.3): delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for this rare header: keeps start-up short

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
