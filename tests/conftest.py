from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

sys.path.insert(0, str(Path(__file__).parent))

from servers import HTTPTestServer  # noqa: E402

# A shell starts a background job (`make test &`, `nohup`) with SIGINT ignored, and an
# ignored signal stays ignored in every child: the tests' Ctrl-C (SIGINT) would then
# reach no crawlsel they start. A handler of our own is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


# A test certificate authority (trustme) for the module, and its certificate as a file.
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cafile(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)
