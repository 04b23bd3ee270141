"""Scale-out on Redis (issue 14): enqueue, workers (as subprocesses, as users run them), status,
results, against a real redis-server started on a free port of 127.0.0.1 for each test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlsel.redisjob import partition_of
from crawlsel.sources import parse_url

from servers import HTTPTestServer

redis = pytest.importorskip("redis", reason="redis-py is not installed: pip install 'crawlsel[redis]'")
REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (.ci/run installs it: apt-get install redis-server)",
)
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server of a test's own: its port, folder and process; restartable."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()
        self.client = redis.Redis(port=self.port)

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        command += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, save: bool = False) -> None:
        assert self.proc is not None
        if save:  # SHUTDOWN SAVE writes dump.rdb, which the next start loads
            try:
                self.client.shutdown(save=True)
            except redis.ConnectionError:
                pass
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def rds(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    yield server
    server.stop()


def crawlsel(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawlsel", *args], env=ENV, capture_output=True, text=True, timeout=timeout
    )


def start_worker(rds: RedisServer, out: Path, *args: str) -> subprocess.Popen:
    """A worker whose stdout and stderr go to files: a full pipe nobody reads yet would
    stop it (and the job, which waits for its entries)."""
    command = [sys.executable, "-m", "crawlsel", "worker", "--redis", rds.url, "-o", str(out), "-q", *args]
    logs = out.parent / f"worker-{time.monotonic_ns()}"
    with open(f"{logs}.out", "w") as stdout, open(f"{logs}.err", "w") as stderr:
        proc = subprocess.Popen(command, env=ENV, stdout=stdout, stderr=stderr)
    proc.logs = logs  # type: ignore[attr-defined]
    return proc


def enqueue(rds: RedisServer, tmp_path: Path, urls: list[str]) -> subprocess.CompletedProcess:
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    done = crawlsel("enqueue", "--redis", rds.url, str(source))
    assert done.returncode == 0, done.stderr
    return done


def site(servers: list[HTTPTestServer], pages: int, delay: float = 0.0) -> list[str]:
    """``pages`` pages spread over the servers, each body naming its URL."""
    urls = []
    for i in range(pages):
        srv = servers[i % len(servers)]
        urls.append(srv.add(f"/p{i}.html", f"page {i}\n".encode(), delay=delay))
    return urls


def results(rds: RedisServer) -> list[dict]:
    done = crawlsel("results", "--redis", rds.url)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def requests_per_url(servers: list[HTTPTestServer]) -> Counter:
    return Counter(srv.url(r.target) for srv in servers for r in srv.requests)


def saved_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def wait(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """The worker's exit status and stderr."""
    code = proc.wait(timeout)
    return code, Path(f"{proc.logs}.err").read_text()  # type: ignore[attr-defined]


def stdout_of(proc: subprocess.Popen) -> str:
    return Path(f"{proc.logs}.out").read_text()  # type: ignore[attr-defined]


def test_one_worker_does_a_whole_list(rds: RedisServer, make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(3)]
    urls = site(servers, 60)
    done = enqueue(rds, tmp_path, [*urls, urls[0]])
    assert "60 URLs queued, 1 seen before" in done.stderr
    again = enqueue(rds, tmp_path, urls)
    assert "0 URLs queued, 60 seen before" in again.stderr  # the seen set is the job's
    out = tmp_path / "out"
    code, err = wait(start_worker(rds, out))
    assert code == 0, err
    assert requests_per_url(servers) == Counter(urls)
    assert len(saved_files(out)) == 60
    records = results(rds)
    assert sorted(r["url"] for r in records) == sorted(urls)
    assert all(r["status"] == 200 and r["path"] for r in records)
    status = crawlsel("status", "--redis", rds.url)
    assert ": done: 0 queued, 0 retrying, 0 in flight, 60 done, 0 failed, 0 dead" in status.stdout


def test_two_workers_split_a_list(rds: RedisServer, make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(8)]
    urls = site(servers, 400, delay=0.005)
    enqueue(rds, tmp_path, urls)
    out = tmp_path / "out"
    workers = [start_worker(rds, out, "--json") for _ in range(2)]
    ends = [wait(w) for w in workers]
    assert [code for code, _ in ends] == [0, 0], ends
    assert requests_per_url(servers) == Counter(urls)  # none twice, none missing
    by_worker = [len(stdout_of(w).splitlines()) for w in workers]
    assert sum(by_worker) == 400 and min(by_worker) > 0, by_worker
    assert len(saved_files(out)) == 400


def test_per_host_limits_hold_summed_over_workers(rds: RedisServer, make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(4)]
    urls = site(servers, 160, delay=0.03)
    enqueue(rds, tmp_path, urls)
    workers = [start_worker(rds, tmp_path / "out", "--per-host", "2") for _ in range(3)]
    for w in workers:
        assert wait(w)[0] == 0
    for srv in servers:
        spans = sorted((r.at, r.at + 0.03) for r in srv.requests)
        most = max(sum(1 for a, b in spans if a <= at < b) for at, _ in spans)
        assert most <= 2, f"{most} requests at once to {srv.base}"


def test_kill_9_of_one_of_two_workers(rds: RedisServer, make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(6)]
    urls = site(servers, 300, delay=0.02)
    enqueue(rds, tmp_path, urls)
    out = tmp_path / "out"
    args = ("--claim-after", "1", "--lease", "1", "-c", "8", "--per-host", "2")
    victim, survivor = start_worker(rds, out, *args), start_worker(rds, out, *args)
    deadline = time.monotonic() + 30
    while int(rds.client.get("crawlsel:done") or 0) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.kill()  # SIGKILL: no clean-up at all
    victim.wait()
    code, err = wait(survivor)
    assert code == 0, err
    files = saved_files(out)
    assert len(files) == 300 and not [f for f in files if f.suffix == ".part"]
    for f in files:
        assert f.read_bytes().startswith(b"page ")
    assert sorted(r["url"] for r in results(rds)) == sorted(urls)  # every record present
    assert set(requests_per_url(servers)) == set(urls)  # some twice (at least once), none missing
    assert int(rds.client.get("crawlsel:done")) == 300


def test_a_killed_lease_holders_host_is_taken_after_the_lease(
    rds: RedisServer, server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = site([server], 120, delay=0.02)
    enqueue(rds, tmp_path, urls)
    out = tmp_path / "out"
    args = ("--claim-after", "0.5", "--lease", "2", "--per-host", "1")
    workers = {w.pid: w for w in (start_worker(rds, out, *args), start_worker(rds, out, *args))}
    deadline = time.monotonic() + 30
    # the lease of the partition the host hashes to, not of some empty partition
    partitions = int(rds.client.hget("crawlsel:meta", "partitions") or 0) or None
    holder = None
    while time.monotonic() < deadline and (holder is None or len(server.requests) < 10):
        time.sleep(0.02)
        partitions = partitions or int(rds.client.hget("crawlsel:meta", "partitions") or 0) or None
        if partitions:
            key = b"crawlsel:lease:%d" % partition_of(parse_url(urls[0]), partitions)
            holder = rds.client.get(key) if server.requests else None
    assert holder is not None
    pid = int(holder.decode().rsplit("-", 2)[1])
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    workers.pop(pid).wait()
    (other,) = workers.values()
    code, err = wait(other)
    assert code == 0, err
    after = sorted(r.at for r in server.requests if r.at > killed_at + 0.1)
    assert after and after[0] - killed_at >= 1.5, "another worker fetched the host before the lease ended"
    assert len(saved_files(out)) == 120


def test_redis_restarted_mid_run(rds: RedisServer, make_server, tmp_path: Path) -> None:
    servers = [make_server() for _ in range(4)]
    urls = site(servers, 200, delay=0.02)
    enqueue(rds, tmp_path, urls)
    w = start_worker(rds, tmp_path / "out", "-c", "4", "--per-host", "1")
    deadline = time.monotonic() + 30
    while int(rds.client.get("crawlsel:done") or 0) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    rds.stop(save=True)
    time.sleep(2.5)
    rds.start()
    code, err = wait(w)
    assert code == 0, err
    lines = err.splitlines()
    # The first line depends on where the call was when the server went away.
    outage = re.compile(
        rf"crawlsel: {re.escape(rds.url)}: (connection refused|connection closed by the server); retrying in [0-9.]+ s"
    )
    assert f"crawlsel: {rds.url}: connection refused; retrying in 0.5 s" in lines or outage.match(lines[0]), (
        err
    )
    assert all(outage.fullmatch(line) for line in lines[:-1]), err  # one line each, no traceback
    assert lines[-1] == f"crawlsel: {rds.url}: connected again"
    assert sorted(r["url"] for r in results(rds)) == sorted(urls)
    assert len(saved_files(tmp_path / "out")) == 200


class ResettingServer:
    """Reads a request, then resets the connection (SO_LINGER 0): a poison URL."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/poison"
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if conn.recv(65536):
                self.requests += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


def test_a_poison_url_ends_in_the_dead_letter_stream(rds: RedisServer, make_server, tmp_path: Path) -> None:
    good, bad = make_server(), ResettingServer()
    urls = [*site([good], 5), bad.url]
    enqueue(rds, tmp_path, urls)
    code, err = wait(start_worker(rds, tmp_path / "out", "--retries", "0", "--retry-delay", "0.05"))
    bad.sock.close()
    assert code == 1, err  # a URL failed
    assert bad.requests == 3  # --max-deliveries
    dead = rds.client.xrange("crawlsel:dead")
    assert len(dead) == 1 and dead[0][1][b"u"] == bad.url.encode()
    assert b"delivered 3 times; last error:" in dead[0][1][b"e"]
    (record,) = [r for r in results(rds) if r["url"] == bad.url]
    assert record["attempts"] == 3 and record["error"].startswith("delivered 3 times")
    assert ", 1 dead," in crawlsel("status", "--redis", rds.url).stdout


def test_results_follow_prints_new_records(rds: RedisServer, server: HTTPTestServer, tmp_path: Path) -> None:
    urls = site([server], 5)
    enqueue(rds, tmp_path, urls[:2])
    assert wait(start_worker(rds, tmp_path / "out"))[0] == 0
    command = [sys.executable, "-m", "crawlsel", "results", "--redis", rds.url, "--follow"]
    follower = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, text=True)
    enqueue(rds, tmp_path, urls)
    assert wait(start_worker(rds, tmp_path / "out"))[0] == 0
    time.sleep(1.5)
    follower.send_signal(signal.SIGINT)
    seen = [json.loads(line)["url"] for line in follower.communicate(timeout=10)[0].splitlines()]
    assert sorted(seen) == sorted(urls)


def test_redis_unreachable_is_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["status"], ["results"], ["enqueue", str(tmp_path)]):
        (tmp_path / "urls.txt").write_text("http://127.0.0.1:1/\n")
        args = [a if a != str(tmp_path) else str(tmp_path / "urls.txt") for a in args]
        done = crawlsel(*args, "--redis", url)
        assert done.returncode == 1
        assert done.stderr == f"crawlsel: {url}: connection refused\n"


def test_without_redis_py_the_commands_say_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "redis.py").write_text("raise ImportError('no redis here')\n")
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    for command in ("status", "worker"):
        done = subprocess.run(
            [sys.executable, "-m", "crawlsel", command, "--redis", "redis://127.0.0.1:1/0"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1
        assert done.stderr == "crawlsel: the Redis commands need redis-py: pip install 'crawlsel[redis]'\n"


def test_a_stopped_worker_hands_back_what_it_held(
    rds: RedisServer, server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = site([server], 60, delay=0.02)
    enqueue(rds, tmp_path, urls)
    out = tmp_path / "out"
    first = start_worker(rds, out, "--per-host", "1")
    deadline = time.monotonic() + 30
    while int(rds.client.get("crawlsel:done") or 0) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    assert wait(first)[0] == 130
    pending = sum(rds.client.xpending(f"crawlsel:q:{p}", "w")["pending"] for p in range(64))
    assert pending == 0  # nothing left to wait --claim-after (60 s) for
    started = time.monotonic()
    assert wait(start_worker(rds, out, "--per-host", "1"))[0] == 0
    assert time.monotonic() - started < 10
    assert len(saved_files(out)) == 60
    assert sorted(r["url"] for r in results(rds)) == sorted(urls)


def test_fetch_start_up_does_not_import_redis() -> None:
    probe = "import sys\nfrom crawlsel.cli import main\nprint('redis' in sys.modules, 'crawlsel.redisjob' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


HTML = [("Content-Type", "text/html; charset=utf-8")]


def linked_site(servers: list[HTTPTestServer]) -> dict[str, list[str]]:
    """Pages on every server linking across servers, many links shared, a chain deeper than
    the crawl's depth, a robots.txt Disallow and a link out of scope; url -> its links."""
    n = len(servers)
    links: dict[str, list[str]] = {}
    common = servers[0].url("/common.html")
    for s, srv in enumerate(servers):
        for i in range(12):
            nxt = servers[(s + 1) % n]
            links[srv.url(f"/p{i}.html")] = [
                nxt.url(f"/p{(i + 1) % 12}.html"),
                srv.url(f"/p{(2 * i + 1) % 12}.html"),
                common,  # shared by every page
                servers[1].url(f"/private/{i}.html"),  # disallowed by robots.txt
                "http://elsewhere.invalid/x.html",  # another host: out of scope
            ]
            links[srv.url(f"/private/{i}.html")] = []
    chain = [servers[2].url(f"/deep/{k}.html") for k in range(1, 8)]
    for here, there in zip(chain, chain[1:], strict=False):
        links[here] = [there]
    links[chain[-1]] = []
    links[common] = [servers[3].url("/p5.html"), chain[0]]
    links[servers[0].url("/")] = [srv.url("/p0.html") for srv in servers] + [chain[0]]
    for url, found in links.items():
        srv = next(s for s in servers if url.startswith(s.base))
        body = "".join(f'<a href="{link}">{link}</a>\n' for link in found)
        srv.add(url[len(srv.base) :], f"<html><body>{body}</body></html>".encode(), headers=HTML, delay=0.02)
    servers[1].add("/robots.txt", b"User-agent: *\nDisallow: /private/\n")
    return links


def file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in saved_files(out)}


def test_a_crawl_across_3_workers_saves_the_single_process_crawls_files(
    rds: RedisServer, make_server, tmp_path: Path
) -> None:
    servers = [make_server() for _ in range(8)]
    linked_site(servers)
    seed = servers[0].url("/")
    scope = ("--depth", "3")
    alone = crawlsel("crawl", seed, *scope, "-q", "--per-host", "1", "-o", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr
    expected = file_bytes(tmp_path / "alone")
    for srv in servers:
        srv.requests.clear()

    done = crawlsel("enqueue", "--redis", rds.url, "--crawl", seed, *scope)
    assert done.returncode == 0, done.stderr
    assert "1 seeds queued, 0 seen before" in done.stderr
    other = crawlsel("enqueue", "--redis", rds.url, "--crawl", seed, "--depth", "4")
    assert other.returncode == 1 and "the job crawls with other settings" in other.stderr
    out = tmp_path / "shared"
    workers = [start_worker(rds, out, "--json", "--per-host", "1") for _ in range(3)]
    try:
        ends = [wait(w) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [code for code, _ in ends] == [0, 0, 0], ends

    assert file_bytes(out) == expected  # the same files, the same bytes
    paths = set(expected)
    assert any("deep/3.html" in p for p in paths) and not any("deep/4.html" in p for p in paths)
    assert not any("private" in p for p in paths) and not any("elsewhere" in p for p in paths)
    pages = Counter(srv.url(r.target) for srv in servers for r in srv.requests if r.target != "/robots.txt")
    saved_pages = [p for p in expected if not p.endswith("/robots.txt")]  # (each worker reads robots.txt)
    assert len(pages) == len(saved_pages) and max(pages.values()) == 1  # every page once, by one worker
    records = [json.loads(line) for w in workers for line in stdout_of(w).splitlines()]
    fetched = [r for r in records if r.get("via") != "robots"]
    assert len({r["url"] for r in fetched}) == len(fetched)  # each URL once across the workers
    assert {r["depth"] for r in fetched} == {0, 1, 2, 3}
    assert sum(1 for w in workers if stdout_of(w).strip()) >= 2, "one worker did the whole crawl"
    assert sorted(r["url"] for r in results(rds)) == sorted(r["url"] for r in fetched)
    status = crawlsel("status", "--redis", rds.url)
    assert ": done: 0 queued, 0 retrying, 0 in flight" in status.stdout
