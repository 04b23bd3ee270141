"""The connection's states, their allowed moves, and the two interfaces it talks through.

``State`` and its transition table are the one place the exchange machine's
moves are written (``Connection._to`` checks them; an illegal move raises
``IllegalTransition`` naming the current state).  ``Exchange`` is what the
dispatcher's job gives a connection; ``ConnectionListener`` is what the
connection tells (the dispatcher).  See ``connection`` for what each state means.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from crawlsel.errors import CrawlError
from crawlsel.http11 import ResponseHead

if TYPE_CHECKING:
    from crawlsel.connection import Connection


class State(enum.Enum):
    CONNECTING = "connecting"
    SENDING = "sending"
    RECEIVING = "receiving"
    IDLE = "idle"
    CLOSING = "closing"
    CLOSED = "closed"


# The members as module constants for the event path: on Python 3.11 ``State.IDLE``
# goes through EnumType's __getattr__ hook (0.19 us; a global costs 0.02).
CONNECTING, SENDING, RECEIVING, IDLE, CLOSING, CLOSED = State

_TRANSITIONS: dict[State, tuple[State, ...]] = {
    State.CONNECTING: (State.SENDING, State.IDLE, State.CLOSED),
    State.SENDING: (State.RECEIVING, State.CLOSING, State.CLOSED),
    State.RECEIVING: (State.SENDING, State.IDLE, State.CLOSING, State.CLOSED),
    State.IDLE: (State.SENDING, State.CLOSING, State.CLOSED),
    State.CLOSING: (State.CLOSED,),
    State.CLOSED: (),
}
# Each state carries its allowed successors: the check on the event path is then a
# scan of a short tuple by identity, not a dict lookup through Enum.__hash__.
for _state, _successors in _TRANSITIONS.items():
    _state.successors = _successors  # type: ignore[attr-defined]


class IllegalTransition(RuntimeError):
    pass


class Exchange(Protocol):
    """One request and where its response goes (implemented by the dispatcher's job)."""

    method: str
    request: bytes

    def on_head(self, head: ResponseHead) -> None: ...
    def on_body(self, data: bytes) -> None: ...


class ConnectionListener(Protocol):
    def exchanges_complete(self, conn: Connection, completed: list[tuple[Exchange, ResponseHead]]) -> None:
        """Responses completed by one read, in order; told once, after the
        connection's own state is settled, so that its fate is decided once."""

    def connection_lost(self, conn: Connection, exchanges: list[Exchange], error: CrawlError | None) -> None:
        """The socket is closed.  ``error``, if any, concerns ``exchanges[0]``; the
        others were sent but got no byte of answer."""
