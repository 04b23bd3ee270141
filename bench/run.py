"""crawlsel against curl -Z, aiohttp, requests + threads and wget on the same corpus.

    python bench/run.py [--quick] [--repeat N] [--only tiny,small,latency,big,scale,c10k,crawl]

Serves a generated corpus from nginx on 127.0.0.1 (installing nginx-light when it is
missing and this is root on a Debian-like system; else a Python server, with a
warning that the server is then the bottleneck), and a latency server that waits
100 ms before each response.  Every tool runs on the same URL list with the same
concurrency, in interleaved repetitions; the table gives medians.  Every saved page
is checked byte for byte (sha256) against the corpus.  Output goes to /dev/shm when
it exists: on these machines a disk with online discard makes writes after a large
delete erratic.  The crawl scenario (crawlsel crawl against wget -r, Scrapy and
crawlsel fetch on two sites) is bench/crawl.py, run last with the same --quick and
--repeat.  The tiny scenario (bench/tiny.py: one `crawlsel get`, and `crawlsel fetch` of
the 6 demo pages, against curl and wget, many runs each) runs first.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchservers import LatencyServer, StaticServer, importable, wait_for_time_wait  # noqa: E402

from crawlsel.sources import parse_url  # noqa: E402
from crawlsel.writer import page_path  # noqa: E402

PY = sys.executable
# The command as users run it: the installed script (without runpy, which
# `python -m` imports: 6 ms), else the module.
_SCRIPT = Path(PY).parent / "crawlsel"
CRAWLSEL = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "crawlsel"]
# Every tool starts as a user's would: with its bytecode cached (some sandboxes set
# PYTHONDONTWRITEBYTECODE, which makes every Python start-up compile from source).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --- scenarios ---------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    what: str
    urls: list[str]
    expected: dict[str, str]  # url -> sha256
    concurrency: int
    tools: list[str]
    ideal: float | None = None
    server: object = None  # a benchservers server: its CPU is measured around each run
    # Another scenario whose crawlsel run is repeated next to each of this one's, so
    # that a ratio between the two is not skewed by the machine's speed drifting.
    reference: Scenario | None = None
    results: dict[str, list[dict]] = field(default_factory=dict)
    reference_results: dict[str, list[dict]] = field(default_factory=dict)


def make_corpus(site: Path, count: int, low: int, high: int, prefix: str, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    digests = {}
    site.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"{prefix}{i}.html"
        path = site / name
        if not path.exists():
            path.write_bytes(rng.randbytes(rng.randint(low, high)))
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


# --- running tools -------------------------------------------------------------------


# crawlsel with HTTP/1.1 pipelining (off by default): the same number of requests in
# flight as the others' connections, on an eighth as many connections.
PIPELINED = "crawlsel --pipeline 8"
# fetch --workers N: the run split over N processes by file name (forked workers).
WORKERS = {"crawlsel --workers 1": "1", "crawlsel --workers 2": "2"}


def command(tool: str, scenario: Scenario, out: Path, lists: Path) -> list[str]:
    n = scenario.concurrency
    if tool.startswith("crawlsel"):
        pipelined = tool == PIPELINED
        return [
            *CRAWLSEL,
            "fetch",
            str(lists / "urls.txt"),
            "-o",
            str(out),
            "-c",
            str(n),
            "--per-host",
            str(max(1, n // 8) if pipelined else n),
            *(["--pipeline", "8"] if pipelined else []),
            *(["--workers", WORKERS[tool]] if tool in WORKERS else []),
            "-q",
            "--no-compressed",
        ]
    if tool == "aiohttp":
        return [PY, str(HERE / "clients" / "aiohttp_fetch.py"), str(lists / "pairs.tsv"), str(n)]
    if tool == "threads":
        return [PY, str(HERE / "clients" / "threads_fetch.py"), str(lists / "pairs.tsv"), str(n)]
    if tool == "curl":
        return ["curl", "-s", "-Z", "--parallel-max", str(min(n, 300)), "-K", str(lists / "curl.cfg")]
    if tool == "wget":
        return ["wget", "-q", "-i", str(lists / "urls.txt"), "-P", str(out), "-nd"]
    raise ValueError(tool)


def output_path(tool: str, url: str, index: int, out: Path) -> Path:
    if tool.startswith("crawlsel"):
        return out.joinpath(*page_path(parse_url(url)))
    if tool == "wget":
        return out / url.rsplit("/", 1)[1]
    return out / f"{index}"


def write_lists(scenario: Scenario, lists: Path, outs: dict[str, Path]) -> None:
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "urls.txt").write_text("".join(u + "\n" for u in scenario.urls))
    pair_out = outs["pairs"]
    (lists / "pairs.tsv").write_text(
        "".join(f"{u}\t{pair_out / str(i)}\n" for i, u in enumerate(scenario.urls))
    )
    (lists / "curl.cfg").write_text(
        "".join(f'url = "{u}"\noutput = "{outs["curl"] / str(i)}"\n' for i, u in enumerate(scenario.urls))
    )


def run_once(tool: str, scenario: Scenario, base: Path, lists: Path) -> dict:
    out = base / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if tool == "curl":
        # curl does not create folders for -o
        pass
    if scenario.concurrency >= 1000:  # c10k: every tool starts with the ports free
        waited = wait_for_time_wait()
        if waited > 1:
            print(
                f"bench: waited {waited:.0f} s for the last run's TIME_WAIT sockets to end", file=sys.stderr
            )
    server = scenario.server
    server_before = server.cpu() if server is not None else 0.0
    started = time.perf_counter()
    proc = subprocess.Popen(
        command(tool, scenario, out, lists), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV
    )
    peak = TreePeak(proc.pid)
    while True:
        peak.sample()
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    server_cpu = server.cpu() - server_before if server is not None else None
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    bad = 0
    for i, url in enumerate(scenario.urls):
        path = output_path(tool, url, i, out)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            bad += 1
            continue
        if digest != scenario.expected[url]:
            bad += 1
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "rss": (peak.kib or usage.ru_maxrss) / 1024,
        "server_cpu": server_cpu,
        "bad": bad,
        "status": proc.returncode,
        "stderr": stderr.strip().splitlines()[-1:] if stderr.strip() else [],
    }


class TreePeak:
    """The peak RSS of a run: the sum of the peaks (VmHWM) of the tool's process and of
    the processes it forked (fetch's workers, the crawl's scanner), sampled while it runs.

    VmHWM belongs to the image after exec, whereas wait4's ru_maxrss also counts the copy
    of this Python process before exec.  Pages a worker shares with its parent since the
    fork count in both: the sum is an upper bound of what the run held at once."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, int] = {}

    def sample(self) -> None:
        peaks = self.peaks
        for pid in (self.pid, *_children(self.pid)):
            kib = _vm_hwm_kib(pid)
            if kib > peaks.get(pid, 0):
                peaks[pid] = kib

    @property
    def kib(self) -> int:
        return sum(self.peaks.values())

    @property
    def own_kib(self) -> int:
        return self.peaks.get(self.pid, 0)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_scenario(scenario: Scenario, base: Path, repeat: int) -> None:
    lists = base / "lists" / scenario.name
    out = base / "run"
    write_lists(scenario, lists, {"pairs": out / "out", "curl": out / "out"})
    tools = [t for t in scenario.tools if t.startswith("crawlsel") or _available(t)]
    for rep in range(repeat):
        order = tools[rep % len(tools) :] + tools[: rep % len(tools)]  # interleaved, rotating
        if scenario.reference is not None:
            reference = scenario.reference
            ref_lists = base / "lists" / reference.name
            write_lists(reference, ref_lists, {"pairs": out / "out", "curl": out / "out"})
            for tool in order:
                timed = run_once(tool, reference, out, ref_lists)
                scenario.reference_results.setdefault(tool, []).append(timed)
        for tool in order:
            result = run_once(tool, scenario, out, lists)
            scenario.results.setdefault(tool, []).append(result)
            print(
                f"bench: {scenario.name:8} {tool:9} rep {rep + 1}: {result['wall']:.2f} s"
                + (f", {result['bad']} pages wrong" if result["bad"] else "")
                + (f" (exit {result['status']}: {' '.join(result['stderr'])})" if result["status"] else ""),
                file=sys.stderr,
            )


def _available(tool: str) -> bool:
    if tool in ("curl", "wget"):
        return shutil.which(tool) is not None
    module = {"aiohttp": "aiohttp", "threads": "requests"}[tool]
    if not importable(module):
        print(f"bench: {tool} skipped: `pip install -e '.[bench]'` installs {module}", file=sys.stderr)
        return False
    return True


def table(scenario: Scenario) -> str:
    rows = []
    pages = len(scenario.urls)
    medians = {}
    for tool, runs in scenario.results.items():
        wall = statistics.median(r["wall"] for r in runs)
        medians[tool] = {
            "wall": wall,
            "rate": pages / wall,
            "cpu": statistics.median(r["cpu"] for r in runs),
            "rss": max(r["rss"] for r in runs),
            "bad": max(r["bad"] for r in runs),
            "server": statistics.median(r["server_cpu"] for r in runs)
            if runs[0]["server_cpu"] is not None
            else None,
        }
    base = medians.get("crawlsel", {}).get("rate")
    header = "| tool | wall s | pages/s | CPU s | server CPU s | peak RSS MiB | pages/s vs crawlsel | bytes |"
    rows.append(f"### {scenario.name}: {scenario.what}")
    rows.append("")
    rows.append(header)
    rows.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for tool, m in sorted(medians.items(), key=lambda kv: -kv[1]["rate"]):
        ratio = f"{m['rate'] / base:.2f}x" if base else "-"
        ok = "all exact" if m["bad"] == 0 else f"{m['bad']} wrong"
        server = "-" if m["server"] is None else f"{m['server']:.2f}"
        rows.append(
            f"| {tool} | {m['wall']:.3f} | {m['rate']:,.0f} | {m['cpu']:.2f} | {server} | {m['rss']:.1f} "
            f"| {ratio} | {ok} |"
        )
    if scenario.reference is not None and scenario.reference_results:
        rows += ["", _growth(scenario, medians)]
    if scenario.ideal and "crawlsel" in medians:
        rows.append("")
        rows.append(
            f"ideal wall {scenario.ideal:.2f} s; crawlsel {medians['crawlsel']['wall'] / scenario.ideal:.3f}x ideal"
        )
    return "\n".join(rows) + "\n"


def _growth(scenario: Scenario, medians: dict[str, dict]) -> str:
    """Each tool's rate against its own rate on the reference list, run next to it,
    with the CPU per page split into the tool's own (user) and the kernel's."""
    assert scenario.reference is not None
    small, large = len(scenario.reference.urls), len(scenario.urls)
    lines = [
        f"| tool | {small:,} URLs: pages/s | {large:,} URLs: pages/s | ratio "
        "| user CPU us/page | system CPU us/page |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for tool, runs in scenario.reference_results.items():
        here = scenario.results[tool]
        ref_rate = statistics.median(small / r["wall"] for r in runs)

        def per_page(key: str, results: list[dict], count: int) -> float:
            return statistics.median(r[key] for r in results) / count * 1e6

        lines.append(
            f"| {tool} | {ref_rate:,.0f} | {medians[tool]['rate']:,.0f} | {medians[tool]['rate'] / ref_rate:.2f}x "
            f"| {per_page('user', runs, small):.0f} -> {per_page('user', here, large):.0f} "
            f"| {per_page('sys', runs, small):.0f} -> {per_page('sys', here, large):.0f} |"
        )
    return (
        f"Growth: each tool on the {scenario.reference.name} list, run before each repetition\n\n"
        + "\n".join(lines)
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small version, under 30 s")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--million", action="store_true", help="scale scenario with 1,000,000 URLs")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else set()
    crawl_args = ["--quick"] if args.quick else ["--repeat", str(args.repeat)]
    if wanted == {"crawl"}:
        import crawl  # bench/crawl.py: its own sites and nginx

        return crawl.main(crawl_args)
    # Bytecode where the script imports crawlsel from (an editable install's link
    # folder has its own __pycache__), and for the sources and the clients.
    installed = subprocess.run(
        [PY, "-c", "import crawlsel, os; print(os.path.dirname(crawlsel.__file__))"],
        cwd="/",
        capture_output=True,
        text=True,
    ).stdout.strip()
    folders = {installed, str(HERE.parent / "crawlsel"), str(HERE / "clients")} - {""}
    subprocess.run([PY, "-m", "compileall", "-q", *sorted(folders)], check=False, env=CHILD_ENV)
    root = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    base = root / "crawlsel-bench"
    base.mkdir(exist_ok=True)
    quick = args.quick
    small_n = 1000 if quick else 5000
    corpus = make_corpus(base / "site", small_n, 2048, 32768, "p", seed=1)
    big_n = 10 if quick else 100
    big = make_corpus(base / "site", big_n, 1 << 20, 3 << 20, "big", seed=2)
    static = StaticServer(base / "site", base)
    latency = LatencyServer(0.1, 4096, base)
    latency_sha = hashlib.sha256(latency.body).hexdigest()
    s_url = f"http://127.0.0.1:{static.port}"
    l_url = f"http://127.0.0.1:{latency.port}"
    all_tools = ["crawlsel", PIPELINED, "curl", "aiohttp", "threads", "wget"]
    scenarios = [
        Scenario(
            "small",
            f"{small_n:,} pages of 2-32 KiB from {static.kind}, concurrency 64",
            [f"{s_url}/p{i}.html" for i in range(small_n)],
            {},
            64,
            [*all_tools, *WORKERS],
        ),
        Scenario(
            "small4",
            f"the same {small_n:,} pages on {len(static.ports)} ports (origins) of {static.kind}, concurrency 64",
            [f"http://127.0.0.1:{static.ports[i % len(static.ports)]}/p{i}.html" for i in range(small_n)],
            {},
            64,
            ["crawlsel", *WORKERS, "curl"],
        ),
        Scenario(
            "latency",
            f"{400 if quick else 2000:,} pages from {latency.kind}, concurrency {80 if quick else 200}",
            [f"{l_url}/l{i}" for i in range(400 if quick else 2000)],
            {},
            80 if quick else 200,  # a multiple of 8: the pipelined row keeps as many in flight
            ["crawlsel", PIPELINED, "curl", "aiohttp", "threads"],
            ideal=(400 / 80 if quick else 2000 / 200) * 0.1,
        ),
        Scenario(
            "big",
            f"{big_n} pages of 1-3 MiB from {static.kind}, concurrency 16",
            [f"{s_url}/big{i}.html" for i in range(big_n)],
            {},
            16,
            all_tools,
        ),
        Scenario(
            "scale",
            f"{(10_000 if quick else 1_000_000 if args.million else 100_000):,} URLs of small pages, concurrency 64",
            [
                f"{s_url}/p{i % small_n}.html?n={i}"
                for i in range(10_000 if quick else 1_000_000 if args.million else 100_000)
            ],
            {},
            64,
            ["crawlsel", "curl"],  # curl: a control for what the machine does with 1.7 GB of files
        ),
        Scenario(
            "c10k",
            f"20,000 pages from {latency.kind}, concurrency 10,000",
            [f"{l_url}/c{i}" for i in range(20_000)],
            {},
            10_000,
            ["crawlsel", "aiohttp"],
            ideal=0.2,
        ),
    ]
    for scenario in scenarios:
        scenario.server = latency if scenario.name in ("latency", "c10k") else static
        for url in scenario.urls:
            name = url.rsplit("/", 1)[1].split("?")[0]
            scenario.expected[url] = corpus.get(name) or big.get(name) or latency_sha
    # The scale must compares with the small rate: measured next to each scale run.
    by_name = {scenario.name: scenario for scenario in scenarios}
    by_name["scale"].reference = by_name["small"]
    if quick:
        scenarios = [s for s in scenarios if s.name != "c10k"]
    if wanted:
        scenarios = [s for s in scenarios if s.name in wanted]
    repeat = 1 if quick else args.repeat
    tiny_table = ""
    try:
        if not wanted or "tiny" in wanted:
            import tiny  # bench/tiny.py: start-up, many short runs

            runs = 10 if quick else 20 * repeat
            tiny_table = tiny.run(CRAWLSEL, PY, s_url, base / "site", base / "run" / "tiny", runs, CHILD_ENV)
        for scenario in scenarios:
            run_scenario(
                scenario,
                base,
                repeat if scenario.name not in ("scale", "c10k") else 1 if quick else max(1, repeat // 3 + 1),
            )
    finally:
        static.stop()
        latency.stop()
        shutil.rmtree(base / "run", ignore_errors=True)
    print(
        f"\n## crawlsel benchmark, {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, output on {root}\n"
    )
    if tiny_table:
        print(tiny_table)
    for scenario in scenarios:
        print(table(scenario))
    if not wanted or "crawl" in wanted:
        import crawl  # bench/crawl.py: its own sites and nginx

        return crawl.main(crawl_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
