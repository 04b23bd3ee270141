"""The scale-out scenario (issue 14): workers on one Redis against fetch in memory.

    python bench/scaleout.py [--pages N] [--origins 64] [--repeat 5] [--quick]

Serves a generated corpus from nginx (1 worker process) on ``--origins`` ports of
127.0.0.1 -- each port an origin, and so a partition key, so that one host's
politeness is not the limit -- and starts its own redis-server (no persistence) on
a free port.  In interleaved repetitions it times, from start to exit:

- ``crawlsel fetch LIST --workers 1`` (in memory, one process like one worker: since
  ``--workers auto`` this list would be split over one process per core);
- one ``crawlsel worker`` on the job (after ``crawlsel enqueue``, not timed);
- two workers on the same job (wall time until both exited);

and reports medians, the ratios, every process's CPU and the servers' (nginx +
redis-server) share of the machine's CPU.  Then: bytes of Redis memory per URL of
the seen set at 1,000,000 URLs (MEMORY USAGE over its keys, and used_memory's
growth), Redis's rates for pipelined XADD / XREADGROUP / XACK, and a kill -9 of one
of two workers (URLs lost, files saved twice, URLs fetched again).  Every saved
page is checked against the corpus by sha256.  Output on /dev/shm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import redis  # noqa: E402
from benchservers import ensure_nginx, free_port, wait_for_port  # noqa: E402

from crawlsel.redisentries import crawl_field  # noqa: E402
from crawlsel.redisjob import ENQUEUE, Keys, enqueue_args  # noqa: E402
from crawlsel.sources import parse_url  # noqa: E402
from crawlsel.writer import page_path  # noqa: E402

PY = sys.executable
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPATH": str(HERE.parent),
}
CRAWLSEL = [PY, "-m", "crawlsel"]
FLAGS = ["-c", "64", "--per-host", "8", "--no-compressed", "-q"]
# fetch as one process, as one worker is: auto would fork one per core for this list.
FETCH = [*CRAWLSEL, "fetch", "--workers", "1"]


def cpu_of(pid: int) -> float:
    """User + system seconds of a live process (for the servers, read before and after)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(fields) if i not in (3, 4))  # all but idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


class Servers:
    def __init__(self, base: Path, origins: int) -> None:
        self.ports = [free_port() for _ in range(origins)]
        nginx = ensure_nginx()
        if nginx is None:
            sys.exit("bench: the scale-out scenario needs nginx (apt-get install nginx-light)")
        listens = "\n".join(f"    listen 127.0.0.1:{p} backlog=4096;" for p in self.ports)
        conf = base / "nginx.conf"
        conf.write_text(
            f"""worker_processes 1;
daemon off;
error_log {base}/nginx-error.log;
pid {base}/nginx.pid;
worker_rlimit_nofile 65536;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {{
{listens}
    root {base / "site"};
  }}
}}
"""
        )
        self.nginx = subprocess.Popen([nginx, "-c", str(conf), "-p", str(base)], stderr=subprocess.DEVNULL)
        for p in self.ports:
            wait_for_port(p)
        self.redis_port = free_port()
        (base / "redis").mkdir(exist_ok=True)
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(base / "redis"),
            ]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.redis_port)
        self.url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.client = redis.Redis(port=self.redis_port)

    def cpu(self) -> float:
        """nginx's master and worker processes, and redis-server."""
        pids = [self.nginx.pid, self.redis.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.nginx.pid:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError):
                continue
        return sum(cpu_of(pid) for pid in pids)

    def stop(self) -> None:
        for proc in (self.nginx, self.redis):
            proc.terminate()
            proc.wait(10)


def make_site(base: Path, servers: Servers, pages: int) -> tuple[list[str], dict[str, str]]:
    site = base / "site"
    site.mkdir(exist_ok=True)
    rng = random.Random(14)
    urls, expected = [], {}
    for i in range(pages):
        body = rng.randbytes(rng.randint(1024, 8192))
        (site / f"s{i}.html").write_bytes(body)
        url = f"http://127.0.0.1:{servers.ports[i % len(servers.ports)]}/s{i}.html"
        urls.append(url)
        expected[url] = hashlib.sha256(body).hexdigest()
    rng.shuffle(urls)
    return urls, expected


def check(out: Path, urls: list[str], expected: dict[str, str]) -> int:
    """Pages saved with the wrong bytes or missing (0 is the only good answer)."""
    bad = 0
    for url in urls:
        path = out.joinpath(*page_path(parse_url(url)))
        try:
            ok = hashlib.sha256(path.read_bytes()).hexdigest() == expected[url]
        except OSError:
            ok = False
        bad += not ok
    return bad


def timed(commands: list[list[str]], servers: Servers, kill_at: int | None = None) -> dict:
    """Start the commands together; wall time until all exited, their CPU, the servers' share."""
    cpu0, machine0, t0 = servers.cpu(), machine_cpu(), time.perf_counter()
    procs = [
        subprocess.Popen(c, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands
    ]
    killed = None
    if kill_at is not None:
        while int(servers.client.get("crawlsel:done") or 0) < kill_at:
            time.sleep(0.01)
        procs[0].kill()
        killed = procs[0]
    cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if proc is not killed and proc.returncode != 0:
            print(f"bench: {' '.join(proc.args[3:5])} exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
    wall = time.perf_counter() - t0
    server = servers.cpu() - cpu0
    machine = machine_cpu() - machine0
    return {"wall": wall, "cpu": cpu, "server_cpu": server, "server_share": server / max(1e-9, machine)}


def new_job(servers: Servers, base: Path, urls_file: Path) -> None:
    servers.client.flushall()
    done = subprocess.run(
        [*CRAWLSEL, "enqueue", "--redis", servers.url, str(urls_file)], env=ENV, capture_output=True
    )
    assert done.returncode == 0, done.stderr


def worker(servers: Servers, out: Path, *extra: str) -> list[str]:
    return [*CRAWLSEL, "worker", "--redis", servers.url, "-o", str(out), *FLAGS, *extra]


def seen_set_bytes(servers: Servers, count: int) -> dict:
    """The seen set's memory per URL after ``count`` URLs through the ENQUEUE script, as a
    crawl's workers send found URLs (``enqueue_args`` with the crawl's entry fields; the
    streams it also fills are deleted first: queued entries are not counted)."""
    client = servers.client
    client.flushall()
    keys = Keys("seen")
    script = client.register_script(ENQUEUE)
    t0 = time.perf_counter()
    for start in range(0, count, 2000):
        batch = [
            parse_url(f"http://host{i % 5000}.example/a/page-{i}.html") for i in range(start, start + 2000)
        ]
        parent = "http://host0.example/a/"
        pairs = [(t, crawl_field(t.url, 3, "link", parent)) for t in batch]
        script(args=enqueue_args(keys, 64, pairs))  # type: ignore[arg-type]
        if start % 200_000 == 0:  # keep the streams small meanwhile
            client.delete(*[keys.stream(p) for p in range(64)])
    rate = count / (time.perf_counter() - t0)
    client.delete(*[keys.stream(p) for p in range(64)], keys.out)
    used = client.info("memory")["used_memory"]
    client.memory_purge()
    usage = sum(
        client.memory_usage(k, samples=0) for k in client.scan_iter(match=keys.seen + b"*", count=5000)
    )
    buckets = client.dbsize()
    client.flushall()
    empty = client.info("memory")["used_memory"]
    return {
        "urls": count,
        "usage_per_url": usage / count,
        "used_per_url": (used - empty) / count,
        "buckets": buckets,
        "enqueue_rate": rate,
    }


def redis_rates(servers: Servers, n: int = 200_000, batch: int = 1000) -> dict:
    client = servers.client
    client.flushall()
    stream = b"rate:q"
    client.xgroup_create(stream, b"g", id=b"0", mkstream=True)
    payload = {b"u": b"http://127.0.0.1:40000/s12345.html", b"n": b"0"}
    rates = {}
    t0 = time.perf_counter()
    for _ in range(n // batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.xadd(stream, payload)
        pipe.execute()
    rates["XADD"] = n / (time.perf_counter() - t0)
    ids = []
    t0 = time.perf_counter()
    while True:
        got = client.xreadgroup(b"g", b"c", {stream: b">"}, count=batch)
        if not got:
            break
        ids += [i for i, _ in got[0][1]]
    rates["XREADGROUP"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for start in range(0, len(ids), batch):
        client.xack(stream, b"g", *ids[start : start + batch])
    rates["XACK"] = n / (time.perf_counter() - t0)
    client.flushall()
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=30_000)
    parser.add_argument("--origins", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seen", type=int, default=1_000_000, help="URLs for the seen-set measure")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", action="store_true", help="only serve (site and Redis) until Ctrl-C")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.repeat, args.seen = 5000, 1, 100_000
    root = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    base = root / "crawlsel-scaleout"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    servers = Servers(base, args.origins)
    try:
        urls, expected = make_site(base, servers, args.pages)
        urls_file = base / "urls.txt"
        urls_file.write_text("".join(u + "\n" for u in urls))
        if args.serve:
            print(f"bench: serving {urls_file} with {servers.url}; Ctrl-C ends", file=sys.stderr)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                return 0
        # "fetch x2": two fetches of half the list each, no Redis and nothing shared: the
        # most any two processes can get from this machine's cores (the ceiling for x2).
        halves = [base / "half0.txt", base / "half1.txt"]
        for i, half in enumerate(halves):
            half.write_text("".join(u + "\n" for u in urls[i::2]))
        runs: dict[str, list[dict]] = {"fetch": [], "fetch x2": [], "worker x1": [], "worker x2": []}
        for rep in range(args.repeat):
            # The order alternates: this VM's speed drifts by 20-30 % over a minute.
            for name in list(runs) if rep % 2 == 0 else reversed(list(runs)):
                out = base / "out"
                shutil.rmtree(out, ignore_errors=True)
                if name == "fetch":
                    result = timed([[*FETCH, str(urls_file), "-o", str(out), *FLAGS]], servers)
                elif name == "fetch x2":
                    result = timed([[*FETCH, str(h), "-o", str(out), *FLAGS] for h in halves], servers)
                else:
                    new_job(servers, base, urls_file)
                    result = timed([worker(servers, out)] * (2 if name == "worker x2" else 1), servers)
                result["bad"] = check(out, urls, expected)
                runs[name].append(result)
                print(
                    f"bench: rep {rep + 1} {name:9}: {result['wall']:.2f} s, {args.pages / result['wall']:,.0f} pages/s, "
                    f"CPU {result['cpu']:.2f} s, servers {result['server_share']:.0%} of the machine, "
                    f"{result['bad']} bad",
                    file=sys.stderr,
                )
        # kill -9 of one of two workers, a third of the way through
        out = base / "out"
        shutil.rmtree(out, ignore_errors=True)
        new_job(servers, base, urls_file)
        timed(
            [worker(servers, out, "--claim-after", "2", "--lease", "2")] * 2, servers, kill_at=args.pages // 3
        )
        files = [p for p in out.rglob("*") if p.is_file()]
        records = servers.client.hlen("crawlsel:latest")
        written = servers.client.xlen("crawlsel:results")
        kill = {
            "lost": check(out, urls, expected),
            "files": len(files),
            "records": records,
            "fetched_again": written - records,
            "parts": sum(p.suffix == ".part" for p in files),
        }
        seen = seen_set_bytes(servers, args.seen)
        rates = redis_rates(servers)
    finally:
        servers.stop()
    report(args, runs, kill, seen, rates)
    return 0


def report(
    args: argparse.Namespace, runs: dict[str, list[dict]], kill: dict, seen: dict, rates: dict
) -> None:
    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    rate = {name: args.pages / med(name, "wall") for name in runs}
    spread = {
        name: (
            args.pages / max(r["wall"] for r in runs[name]),
            args.pages / min(r["wall"] for r in runs[name]),
        )
        for name in runs
    }
    print(
        f"\n## scale-out, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, redis-py {redis.__version__}"
    )
    print(
        f"\n{args.pages:,} pages of 1-8 KiB on {args.origins} origins (nginx, 1 worker), -c 64 --per-host 8, "
        f"median of {args.repeat}\n"
    )
    print(
        "| run | wall s | pages/s (min-max) | vs fetch | CPU s (crawlsel) | servers' CPU share | bad pages |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in runs:
        lo, hi = spread[name]
        print(
            f"| {name} | {med(name, 'wall'):.2f} | {rate[name]:,.0f} ({lo:,.0f}-{hi:,.0f}) | "
            f"{rate[name] / rate['fetch']:.2f}x | {med(name, 'cpu'):.2f} | {med(name, 'server_share'):.0%} | "
            f"{sum(r['bad'] for r in runs[name])} |"
        )
    print(
        f"\n2 workers vs 1: {rate['worker x2'] / rate['worker x1']:.2f}x; "
        f"two fetches of half the list vs one of all: {rate['fetch x2'] / rate['fetch']:.2f}x"
    )
    print(
        f"\nseen set: {seen['usage_per_url']:.1f} bytes/URL (MEMORY USAGE of its {seen['buckets']:,} hashes), "
        f"{seen['used_per_url']:.1f} bytes/URL (used_memory), {seen['urls']:,} URLs; "
        f"enqueue {seen['enqueue_rate']:,.0f} URLs/s"
    )
    print(
        "\nRedis, pipelined in batches of 1,000, one client: "
        + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items())
    )
    print(
        f"\nkill -9 of one of two workers at a third: {kill['lost']} URLs lost or wrong, "
        f"{kill['files']:,} files for {args.pages:,} URLs (0 saved twice: one path each), "
        f"{kill['records']:,} records, {kill['fetched_again']} URLs fetched again after the claim, "
        f"{kill['parts']} .part files left"
    )
    print(json.dumps({"runs": runs, "kill": kill, "seen": seen, "rates": rates}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
