"""Response fields the run's policy reads: where a redirect points, how long Retry-After asks to wait.

Kept apart from ``job`` so that each stays one responsibility: these only read a
head's text and never decide what the URL does next.
"""

from __future__ import annotations

import time

from crawlsel.http11 import ResponseHead


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
