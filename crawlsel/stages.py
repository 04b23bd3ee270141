"""The stages of a URL in the select engine, the moves allowed between them, and their counts.

One table (``MOVES``) says how a URL may go from a line of the list to its one
record; ``Stages.move`` is the only way a job changes stage, checks the move and
keeps the count of jobs at each stage, so the dispatcher's numbers (how many are
queued, on connections, waiting for a retry) are derived, never kept by hand.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawlsel.job import Job


class Stage(Enum):
    """Where a URL is in the select engine; ``Stages.move`` is the only way between them."""

    NEW = "new"
    QUEUED = "queued"  # in its origin's queue
    SENT = "sent"  # on a connection
    ANSWERED = "answered"  # its response is complete, not yet acted on
    WAITING = "waiting"  # for a retry timer
    DONE = "done"  # its one record is given


# Every move a URL may make.  Anything else is a bug, raised where it happens
# instead of surfacing later as a URL without a record.
MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.NEW: frozenset({Stage.QUEUED, Stage.DONE}),
    Stage.QUEUED: frozenset({Stage.SENT, Stage.DONE}),  # started; expired or unresolvable
    # answered; sent again; retried after an error; failed or expired
    Stage.SENT: frozenset({Stage.ANSWERED, Stage.QUEUED, Stage.WAITING, Stage.DONE}),
    Stage.ANSWERED: frozenset({Stage.QUEUED, Stage.WAITING, Stage.DONE}),  # redirect; retry; final
    Stage.WAITING: frozenset({Stage.QUEUED, Stage.DONE}),
    Stage.DONE: frozenset(),
}


class IllegalMove(AssertionError):
    """A job was moved in a way MOVES does not allow (a bug in the caller)."""


class Stages:
    """How many jobs are at each stage, kept by the moves themselves (not by hand)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts = dict.fromkeys(Stage, 0)

    def move(self, job: Job, to: Stage) -> None:
        stage = job.stage
        if to not in MOVES[stage]:
            raise IllegalMove(f"{job.current.url}: {stage.value} -> {to.value}")
        counts = self._counts
        if stage is not Stage.NEW:  # jobs are made outside: NEW is not counted
            counts[stage] -= 1
        counts[to] += 1
        job.stage = to

    def __getitem__(self, stage: Stage) -> int:
        return self._counts[stage]
