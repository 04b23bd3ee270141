"""The stages of a URL in the select engine, the moves allowed between them, and their counts.

One table (``MOVES``) says how a URL may go from a line of the list to its one
record; ``Stages.move`` is the only way a job changes stage, checks the move and
keeps the count of jobs at each stage, so the dispatcher's numbers (how many are
queued, on connections, waiting for a retry) are derived, never kept by hand.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawlsel.job import Job


class Stage(IntEnum):
    """Where a URL is in the select engine; ``Stages.move`` is the only way between them.

    An IntEnum: four moves per URL hash and index stages, and Enum's hash is
    Python code (20,000 moves cost 0.1 s of a 5,000-page run with it).
    """

    NEW = 0
    QUEUED = 1  # in its origin's queue
    SENT = 2  # on a connection
    ANSWERED = 3  # its response is complete, not yet acted on
    WAITING = 4  # for a retry timer
    DONE = 5  # its one record is given


# The members as module constants for the event path: on Python 3.11 ``Stage.SENT``
# goes through EnumType's __getattr__ hook (0.19 us; a global costs 0.02).
NEW, QUEUED, SENT, ANSWERED, WAITING, DONE = Stage

# Every move a URL may make, indexed by the stage it leaves.  Anything else is a
# bug, raised where it happens instead of surfacing later as a URL without a record.
MOVES: tuple[frozenset[Stage], ...] = (
    frozenset({Stage.QUEUED, Stage.DONE}),  # NEW
    frozenset({Stage.SENT, Stage.DONE}),  # QUEUED: started; expired or unresolvable
    # SENT: answered; sent again; retried after an error; failed or expired
    frozenset({Stage.ANSWERED, Stage.QUEUED, Stage.WAITING, Stage.DONE}),
    frozenset({Stage.QUEUED, Stage.WAITING, Stage.DONE}),  # ANSWERED: redirect; retry; final
    frozenset({Stage.QUEUED, Stage.DONE}),  # WAITING
    frozenset(),  # DONE
)


class IllegalMove(AssertionError):
    """A job was moved in a way MOVES does not allow (a bug in the caller)."""


class Stages:
    """How many jobs are at each stage, kept by the moves themselves (not by hand)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        # Indexed by Stage; read directly on the hot path (``stages.counts[QUEUED]``
        # costs no call), changed only by ``move``.
        self.counts = [0] * len(Stage)

    def move(self, job: Job, to: Stage) -> None:
        stage = job.stage
        if to not in MOVES[stage]:
            raise IllegalMove(f"{job.current.url}: {stage.name.lower()} -> {to.name.lower()}")
        counts = self.counts
        if stage:  # NEW (0) is not counted: jobs are made outside
            counts[stage] -= 1
        counts[to] += 1
        job.stage = to

    def __getitem__(self, stage: Stage) -> int:
        return self.counts[stage]
