from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import HTTPTestServer  # noqa: E402


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    srv = HTTPTestServer()
    yield srv
    srv.close()


@pytest.fixture
def make_server() -> Iterator:
    made: list[HTTPTestServer] = []

    def make(**kwargs: object) -> HTTPTestServer:
        srv = HTTPTestServer(**kwargs)  # type: ignore[arg-type]
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()
