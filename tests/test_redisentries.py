"""A worker's entries (``redisentries``): the fast record is the JSON encoder's record, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlsel.models import FetchResult
from crawlsel.redisentries import _FAST_RECORD, record_of
from crawlsel.redisjob import record_bytes

pytest.importorskip("redis", reason="redis-py is not installed: pip install 'crawlsel[redis]'")

URL = "http://127.0.0.1:8080/a.html"
TABLE = [
    FetchResult(URL, 200, "out/127.0.0.1_8080/a.html", 5000, 12.345678, final_url=URL),
    FetchResult(
        URL, None, None, 0, 1.0, error='refused "quoted" \\ \n\t\x01', error_kind="connect", attempts=3
    ),
    FetchResult("http://h/\u2028é/\U0001f600", 404, None, 12, 0.0004, error="HTTP 404", error_kind="http"),
    FetchResult(URL, 200, "p", 0, 1e20, skipped=True, skip_reason="exists"),
    FetchResult(URL, 200, "p", 0, 5),  # an int elapsed: the encoder writes 5, not 5.0
    FetchResult(URL, 200, "p", 0, float("nan")),
    FetchResult(URL, 200, "p", 0, float("inf")),
    FetchResult(URL, 304, "p", 0, 2.5, unchanged=True),
    FetchResult(URL, 200, "p", 10, 3.0, via="link", depth=2, parent="http://h/", links=4),
]


def test_the_fast_record_is_in_force() -> None:
    # False would mean FetchResult.as_json changed: records stay right, but slow.
    assert _FAST_RECORD


@pytest.mark.parametrize("result", TABLE, ids=range(len(TABLE)))
def test_the_record_is_the_encoders(result: FetchResult) -> None:
    assert record_of(result) == record_bytes(result.as_json())


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    url=text,
    status=st.none() | st.integers(100, 999),
    path=st.none() | text,
    size=st.integers(0, 2**40),
    elapsed=st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 10**6),
    error=st.none() | text,
    kind=st.none() | text,
    attempts=st.integers(1, 10),
    skipped=st.booleans(),
    reason=st.none() | text,
)
def test_any_result_gives_the_encoders_record(
    url: str,
    status: int | None,
    path: str | None,
    size: int,
    elapsed: float,
    error: str | None,
    kind: str | None,
    attempts: int,
    skipped: bool,
    reason: str | None,
) -> None:
    result = FetchResult(
        url, status, path, size, elapsed, error, kind, attempts=attempts, skipped=skipped, skip_reason=reason
    )
    assert record_of(result) == record_bytes(result.as_json())
