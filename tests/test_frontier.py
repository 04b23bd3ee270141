"""The frontier protocol as fetch's ListFrontier implements it, and the job stage moves."""

from __future__ import annotations

import os

import pytest

from crawlsel.frontier import Frontier, ListFrontier, blocking_records
from crawlsel.job import Job, JobContext
from crawlsel.models import Config, FetchResult, InvalidLine
from crawlsel.sources import WaitForInput, parse_url, read_targets
from crawlsel.stages import IllegalMove, Stage, Stages


def targets(*paths: str) -> list:
    return [parse_url(f"http://h{p}", index=i) for i, p in enumerate(paths)]


def test_take_reads_only_what_there_is_room_for() -> None:
    consumed = []

    def lazy():
        for t in targets("/a", "/b", "/c", "/d"):
            consumed.append(t)
            yield t

    frontier = ListFrontier(lazy())
    assert [t.target for t in frontier.take(2)] == ["/a", "/b"]
    assert len(consumed) == 2  # a list of a million URLs is never read ahead
    assert frontier.total is None and not frontier.exhausted


def test_each_request_once_and_the_end_is_known() -> None:
    frontier = ListFrontier(targets("/a", "/./a", "/b", "/a"))
    taken = frontier.take(10)
    assert [t.target for t in taken] == ["/a", "/b"]
    assert frontier.total == 2 and not frontier.ready
    frontier.finished(FetchResult(url="http://h/a"))
    assert not frontier.exhausted  # one handed out is not finished
    frontier.finished(FetchResult(url="http://h/b"))
    assert frontier.exhausted


def test_dedupe_off_keeps_repeats() -> None:
    assert len(ListFrontier(targets("/a", "/a"), dedupe=False).take(10)) == 2


def test_found_urls_go_first_and_once() -> None:
    frontier = ListFrontier(targets("/a", "/b"))
    assert [t.target for t in frontier.take(1)] == ["/a"]
    assert frontier.add(parse_url("http://h/found")) is True
    assert frontier.add(parse_url("http://h/a")) is False  # seen: already handed out
    assert [t.target for t in frontier.take(10)] == ["/found", "/b"]


def test_invalid_lines_are_handed_out_to_end_with_a_record() -> None:
    line = InvalidLine("x", "not a URL", "list", 1, 0)
    frontier = ListFrontier([line])
    assert frontier.take(5) == [line]
    assert frontier.total == 1


def test_a_pipe_with_nothing_yet_names_its_descriptor() -> None:
    read, write = os.pipe()
    try:
        frontier = ListFrontier(read_targets(["-"], stdin=os.fdopen(read, "rb", closefd=False)))
        assert isinstance(frontier, Frontier)
        assert frontier.take(5) == [] and frontier.wait_fd == read and not frontier.ready
        os.write(write, b"http://h/a\n")
        frontier.input_ready()
        assert [t.target for t in frontier.take(5)] == ["/a"]
        os.close(write)
        write = -1
        frontier.input_ready()
        assert frontier.take(5) == [] and frontier.total == 1
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_blocking_records_wait_in_the_engine() -> None:
    records = [*targets("/a"), WaitForInput(0), *targets("/b")]
    out = list(blocking_records(ListFrontier(records)))
    assert [getattr(r, "target", r) for r in out] == ["/a", WaitForInput(0), "/b"]


def test_stage_moves_are_counted_and_checked() -> None:
    job = Job(parse_url("http://h/a"), JobContext(Config(), lambda target, head: None))
    stages = Stages()
    stages.move(job, Stage.QUEUED)
    stages.move(job, Stage.SENT)
    assert (stages[Stage.QUEUED], stages[Stage.SENT]) == (0, 1)
    stages.move(job, Stage.DONE)
    with pytest.raises(IllegalMove, match="done -> sent"):
        stages.move(job, Stage.SENT)  # a URL with two records is a bug, raised where it happens
