"""``fetch --workers N`` (crawlsel.workers): one run over several processes, the same result.

Every run is a real ``python -m crawlsel`` process (it forks) against several
loopback servers; --workers 2 is compared with --workers 1 file by file and
record by record.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawlsel.clirun import AUTO_MIN_LIST_BYTES, worker_count
from crawlsel.models import Config
from crawlsel.pacing import SharedPauses
from crawlsel.sources import parse_url
from crawlsel.workerroute import shares, split_by_name, worker_by_name, worker_configs, worker_of

from servers import Gauge, HTTPTestServer

CRAWLSEL = [sys.executable, "-m", "crawlsel", "fetch"]
TIMING = ("elapsed_ms",)


def run(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CRAWLSEL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload]


def records(stdout: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    for row in rows:
        for field in TIMING:
            row.pop(field)
    return sorted(rows, key=lambda row: (str(row["url"]), str(row["path"])))


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def origins(make_server) -> list[HTTPTestServer]:
    """Four origins sharing one gauge: the connections open at once across all of them."""
    gauge = Gauge()
    return [make_server(gauge=gauge) for _ in range(4)]


def site(origins: list[HTTPTestServer], pages: int = 30) -> list[str]:
    """Pages on every origin, with same-name collisions (case, escapes) and a 404 among them."""
    urls = []
    for n, srv in enumerate(origins):
        for i in range(pages):
            urls.append(srv.add(f"/p{i}.html", f"origin {n} page {i} ".encode() * (i + 1)))
        urls.append(srv.add("/Same.html", f"upper {n}".encode()))
        urls.append(srv.add("/same.html", f"lower {n}".encode()))
        urls.append(srv.add("/a%2Fb", f"escaped {n}".encode()))
        urls.append(srv.add("/dir/", f"index {n}".encode()))
    urls.append(origins[0].add("/missing", b"no", status=404))
    urls.append(urls[3])  # listed twice: one record
    urls.append("not a url")
    return urls


def test_two_workers_save_the_same_files_and_records_as_one(origins, tmp_path: Path) -> None:
    urls = site(origins)
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    one = run(["urls.txt", "--workers", "1", "-o", "one", "--json"], tmp_path)
    two = run(["urls.txt", "--workers", "2", "-o", "two", "--json"], tmp_path)
    assert one.returncode == two.returncode == 1, two.stderr
    assert files(tmp_path / "one") == files(tmp_path / "two")
    one_records = records(one.stdout)
    two_records = [
        {**row, "path": str(row["path"]).replace("two/", "one/", 1) if row["path"] else None}
        for row in records(two.stdout)
    ]
    assert one_records == two_records
    assert len(two_records) == len(set(urls))
    same = {Path(str(r["path"])).name for r in two_records if "ame.html" in str(r["url"])}
    assert same == {"Same.html", "same.html.1"}
    assert "1 failed" not in two.stderr and "2 failed" in two.stderr  # the 404 and the bad line


def test_all_saved_exits_zero_and_the_summary_is_printed_once(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/x{i}", b"x" * i) for srv in origins for i in range(10)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    done = run(["urls.txt", "--workers", "3"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(" saved (") == 1
    assert done.stderr.startswith("40 saved")


def test_concurrency_is_a_total_over_the_workers(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/slow{i}", b"s", delay=0.1) for srv in origins for i in range(12)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    done = run(["urls.txt", "--workers", "2", "-c", "3", "--per-host", "8", "-q"], tmp_path)
    assert done.returncode == 0, done.stderr
    # Requests being answered at once (each waits 0.1 s at the server): at most -c.  (The
    # servers' connection gauge sees a closed connection a moment late, one process too.)
    events = sorted(
        (t, step) for srv in origins for r in srv.requests for t, step in ((r.at, 1), (r.at + 0.09, -1))
    )
    busy = peak = 0
    for _, step in events:
        busy += step
        peak = max(peak, busy)
    # Each worker used fills its share (-c 3 over 2 workers is 2 and 1).
    used = {worker_by_name(parse_url(url), 2) for url in urls}
    share = shares(3, 2)
    assert max(share[w] for w in used) <= peak <= sum(share[w] for w in used)
    assert shares(3, 2) == [2, 1] and shares(64, 4) == [16] * 4


def test_a_file_name_always_goes_to_the_same_worker() -> None:
    """The names the writer compares as one (case folded, / and /index.html, http and
    https of one folder) go to one worker: the .1 suffixes follow input order."""
    names = ["http://h.org/Same.html", "http://H.org/same.HTML", "https://h.org/SAME.html"]
    assert len({worker_by_name(parse_url(u), 4) for u in names}) == 1
    assert worker_by_name(parse_url("http://h.org/d/"), 4) == worker_by_name(
        parse_url("http://h.org/d/index.html"), 4
    )
    assert (
        len({worker_by_name(parse_url(f"http://h.org/p{i}"), 4) for i in range(40)}) == 4
    )  # one host, 4 workers


def test_per_host_is_split_only_when_every_worker_gets_a_connection() -> None:
    configs = worker_configs(Config(concurrency=64, per_host=8), 3, True)
    assert [c.concurrency for c in configs] == [22, 21, 21] and [c.per_host for c in configs] == [3, 3, 2]
    assert split_by_name(Config(per_host=2), 2) and not split_by_name(Config(per_host=1), 2)
    assert not split_by_name(Config(per_host=8), 2, paced=True)  # a crawl's --delay: by host
    assert [c.per_host for c in worker_configs(Config(per_host=1), 2, False)] == [1, 1]  # by host: whole


def test_one_host_is_shared_by_the_workers_within_per_host(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/one{i}", b"o" * i, delay=0.1) for i in range(40)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    done = run(["urls.txt", "--workers", "2", "--per-host", "4", "--trace", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "each URL to the worker of its file name" in done.stderr
    assert " worker 1 fd=" in done.stderr and " worker 2 fd=" in done.stderr
    assert len(records(done.stdout)) == 40
    # Requests being answered at once: 2 from each worker, never more than --per-host.
    events = sorted((t, step) for r in server.requests for t, step in ((r.at, 1), (r.at + 0.09, -1)))
    busy = peak = 0
    for _, step in events:
        busy += step
        peak = max(peak, busy)
    assert 3 <= peak <= 4
    by_host = run(["urls.txt", "--workers", "2", "--per-host", "1", "--trace", "-o", "h"], tmp_path)
    assert by_host.returncode == 0 and "each URL to the worker of its host" in by_host.stderr


def test_a_429_pauses_the_host_in_every_worker(server: HTTPTestServer, tmp_path: Path) -> None:
    """A Retry-After one worker gets holds the host in the other worker too."""
    refused_url = server.add(
        "/busy", b"slow down", status=429, reason="Too Many Requests", headers=[("Retry-After", "1")]
    )
    urls = [refused_url] + [server.add(f"/p{i}", b"p", delay=0.3) for i in range(40)]
    assert {worker_by_name(parse_url(u), 2) for u in urls[1:]} == {0, 1}
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    done = run(["urls.txt", "--workers", "2", "--per-host", "4", "--retries", "0", "-q"], tmp_path)
    assert done.returncode == 1, done.stderr  # the 429
    refused = next(r.at for r in server.requests if r.target == "/busy")
    # Requests sent before the 429 arrived reach the server a moment after it; none later.
    during = [r.target for r in server.requests if refused + 0.1 < r.at < refused + 0.9]
    assert during == []
    assert len(server.requests) == 41


def test_a_host_always_goes_to_the_same_worker() -> None:
    a = parse_url("http://Example.org/x")
    b = parse_url("http://example.ORG:80/y")
    c = parse_url("https://example.org/z")  # the same folder, example.org/: the same worker
    assert worker_of(a, 4) == worker_of(b, 4) == worker_of(c, 4)


def test_a_killed_worker_fails_its_urls_and_the_run_ends(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/slow{i}", b"s" * 100, delay=0.2) for srv in origins for i in range(20)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    proc = subprocess.Popen(
        [*CRAWLSEL, "urls.txt", "--workers", "2", "-c", "4", "--json", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The victim is a worker with URLs: with the random ports' hosts, all four can go to
        # one worker, and the other then ends at once (workers are forked in order, /proc
        # lists children in creation order).
        busiest = max(range(2), key=lambda i: sum(worker_by_name(parse_url(u), 2) == i for u in urls))
        victim = _children(proc.pid, 2)[busiest]
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed step above: no run left behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    rows = records(out)
    assert sorted(str(r["url"]) for r in rows) == sorted(urls)  # every URL exactly once
    lost = [r for r in rows if r["error_kind"] == "worker"]
    assert lost, err
    assert all(f"worker process {victim} was killed by SIGKILL" in str(r["error"]) for r in lost)
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("to_group", [True, False], ids=["group", "parent"])
def test_ctrl_c_stops_every_worker_and_exits_130(origins, tmp_path: Path, to_group: bool) -> None:
    urls = [
        srv.add(f"/big{i}", b"b" * 100_000, delay=0.5, framing="chunked", chunk_size=100)
        for srv in origins
        for i in range(25)
    ]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    proc = subprocess.Popen(
        [*CRAWLSEL, "urls.txt", "--workers", "2", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _children(proc.pid, 2)
    time.sleep(0.6)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("interrupted: ") == 1
    assert "Traceback" not in err
    assert not list(tmp_path.rglob("*.part"))


def test_auto_runs_a_small_list_in_one_process(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/p{i}.html", b"p") for i in range(6)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    small = run(["urls.txt", "--trace"], tmp_path)
    assert small.returncode == 0, small.stderr
    assert "worker processes" not in small.stderr and " worker 1 fd=" not in small.stderr
    split = run(["urls.txt", "--trace", "--workers", "2", "-o", "two"], tmp_path)
    assert "crawlsel: 2 worker processes (pids " in split.stderr
    assert " worker 1 fd=" in split.stderr or " worker 2 fd=" in split.stderr


def test_auto_rule(tmp_path: Path) -> None:
    config = Config()
    small = tmp_path / "small.txt"
    small.write_text("http://h/\n" * 6)
    big = tmp_path / "big.txt"
    big.write_text("http://h/x\n" * (AUTO_MIN_LIST_BYTES // 10 + 1))
    assert worker_count("auto", (str(small),), config, "select") == 1
    assert worker_count("auto", ("-",), config, "select") == 1
    cpus = len(os.sched_getaffinity(0))
    assert worker_count("auto", (str(big),), config, "select") == min(cpus, 4)
    assert worker_count("auto", (str(big),), config, "threads") == 1
    assert worker_count("auto", (str(big),), config._replace(warc="x.warc"), "select") == 1
    assert worker_count(3, (str(small),), config._replace(concurrency=2), "select") == 2
    assert worker_count(1, (str(big),), config, "threads") == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--engine", "threads"], "--engine threads"),
        (["--warc", "a.warc"], "--warc"),
        (["--workers", "0"], "is not a number of processes"),
    ],
)
def test_what_needs_one_process_is_a_usage_error(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:9/\n")
    done = run(["urls.txt", "--workers", "2", *args], tmp_path)
    assert done.returncode == 2
    assert words in done.stderr.strip().splitlines()[-1]  # one line says what (click's usage lines above)


def test_update_keeps_one_index_for_every_workers_pages(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/u{i}", b"u", headers=[("ETag", f'"v{i}"')]) for srv in origins for i in range(5)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    assert run(["urls.txt", "--workers", "2", "--update", "-q"], tmp_path).returncode == 0
    index = (tmp_path / "crawled_page" / ".crawlsel-validators").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in index) == sorted(urls)
    for srv in origins:
        srv.requests.clear()
    assert run(["urls.txt", "--workers", "2", "--update", "-q"], tmp_path).returncode == 0
    asked = [r.headers.get("if-none-match") for srv in origins for r in srv.requests]
    assert len(asked) == len(urls) and all(asked)


def test_a_reader_that_goes_away_stops_every_worker(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/h{i}", b"h" * 1000, delay=0.2) for srv in origins for i in range(20)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    read_r, read_w = os.pipe()
    proc = subprocess.Popen(
        [*CRAWLSEL, "urls.txt", "--workers", "2", "--json", "--no-progress"],
        cwd=tmp_path,
        stdout=read_w,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(read_w)
    with os.fdopen(read_r) as reader:
        assert json.loads(reader.readline())["url"] in urls  # as | head -1
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # as one process: the reader left before the end
    assert "Traceback" not in err and err.count(" saved (") == 1
    assert not list(tmp_path.rglob("*.part"))


def test_stdin_with_workers(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/s{i}", b"s") for srv in origins for i in range(5)]
    done = run(["-", "--workers", "2", "--json", "-q"], tmp_path, input="\n".join(urls) + "\n")
    assert done.returncode == 0, done.stderr
    assert sorted(str(r["url"]) for r in records(done.stdout)) == sorted(urls)


def test_skip_existing_with_workers(origins, tmp_path: Path) -> None:
    urls = [srv.add(f"/k{i}", b"k") for srv in origins for i in range(5)]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    assert run(["urls.txt", "--workers", "2", "-q"], tmp_path).returncode == 0
    again = run(["urls.txt", "--workers", "2", "--skip-existing", "--json", "-q"], tmp_path)
    assert again.returncode == 0
    assert all(r["skipped"] for r in records(again.stdout))


def _children(pid: int, count: int) -> list[int]:
    """The pids of a process's children, from /proc (waits until ``count`` are there).

    On failure the process's group is killed, so that it cannot fail the next test too,
    and the message says what state the process was in."""
    wait = 30  # s: a fresh machine's first full run once took over 10
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            text = ""
        found = [int(p) for p in text.split()]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        state = wchan = "gone"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    raise AssertionError(
        f"{pid} has {text.split()} of {count} children after {wait} s (state {state}, in {wchan})"
    )


def test_shared_pauses_are_seen_by_a_forked_process() -> None:
    """What one worker pauses, another reads: the mapping is shared across fork."""
    pauses = SharedPauses()
    a, b = ("http", "a.example", 80), ("http", "b.example", 80)
    now = time.monotonic()
    assert pauses.until(a, now) == 0.0
    pid = os.fork()
    if pid == 0:
        pauses.pause(a, now + 30)
        os._exit(0)
    os.waitpid(pid, 0)
    assert pauses.until(a, now) == now + 30
    assert pauses.until(b, now) in (0.0, now + 30)  # another origin: its own slot, or too polite
    assert pauses.until(a, now + 31) == 0.0  # no pause lasts past then: no slot is read
