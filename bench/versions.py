"""Two crawlsel revisions side by side on one corpus and one server.

    python bench/versions.py OLD_REV NEW_REV [--only small,big] [--repeat 7] [--quick]

Why it exists: a change that must not make crawlsel slower (issue 12's refactor)
needs the old and the new code measured in the same minutes against the same nginx:
this VM's speed drifts by 20-30 % within minutes, so two runs of bench/run.py at
different times cannot tell 5 % apart, and an A/B that always runs one version first
is skewed too (the run after a large delete is slower).  So each repetition runs
both, in the order old, new, then new, old, and so on; the table gives medians, the
median of each repetition's new/old ratio, and every single time.

Each revision's crawlsel/ is exported with `git archive` into a folder under
/dev/shm and run as `python -P -m crawlsel fetch LIST -o OUT` with PYTHONPATH on
that folder and the flags bench/run.py gives crawlsel (-P: the current folder, a
checkout others may be editing, is not on the path).  The corpus, the servers and
the check of every saved page (sha256) are bench/run.py's; the page's file name
comes from the revision that saved it.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
BASE = ROOT / "crawlsel-versions"
SITE = ROOT / "crawlsel-bench" / "site"  # bench/run.py's corpus (same seeds), made once
# bench/run.py's scenarios: (full size, quick size, full concurrency, quick concurrency)
SIZES = {
    "small": (5000, 1000, 64, 64),
    "latency": (2000, 400, 200, 80),
    "big": (100, 10, 16, 16),
    "scale": (100_000, 10_000, 64, 64),
    "c10k": (20_000, None, 10_000, None),
}
# The page names of a revision, as that revision saves them.
PATHS = """import sys
from crawlsel.sources import parse_url
from crawlsel.writer import page_path
for line in sys.stdin:
    print("\\0".join(page_path(parse_url(line.strip()))))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout


def export(rev: str, into: Path) -> tuple[str, Path]:
    """The commit `rev` names and a folder holding its crawlsel/, with bytecode."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    folder = into / sha[:12]
    if not folder.exists():
        blob = subprocess.run(["git", "archive", sha, "crawlsel"], cwd=REPO, check=True, capture_output=True)
        with tarfile.open(fileobj=io.BytesIO(blob.stdout)) as tar:
            tar.extractall(folder, filter="data")
        subprocess.run([PY, "-m", "compileall", "-q", str(folder / "crawlsel")], check=True, env=env(folder))
    found = subprocess.run(
        [PY, "-P", "-c", "import crawlsel; print(crawlsel.__file__)"],
        env=env(folder),
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not found.startswith(str(folder)):
        raise SystemExit(f"versions: {rev} imports crawlsel from {found!r}, not from {folder}")
    return sha, folder


def env(folder: Path) -> dict[str, str]:
    skip = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")  # bytecode cached, as for a user
    return {**{k: v for k, v in os.environ.items() if k not in skip}, "PYTHONPATH": str(folder)}


def load_bench(folder: Path):
    """bench/run.py as a module, importing crawlsel from `folder`, not the checkout."""
    sys.path.insert(0, str(folder))
    import crawlsel.sources  # noqa: F401  (run.py's own import then finds these)
    import crawlsel.writer  # noqa: F401

    spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.CRAWLSEL = [PY, "-P", "-m", "crawlsel"]
    return module


def page_names(folder: Path, urls: list[str]) -> dict[str, list[str]]:
    text = "".join(u + "\n" for u in urls)
    done = subprocess.run(
        [PY, "-P", "-c", PATHS], input=text, env=env(folder), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"versions: page names from {folder}: {done.stderr.strip()}")
    return dict(zip(urls, (line.split("\0") for line in done.stdout.splitlines()), strict=True))


def scenarios(bench, quick: bool, only: set[str]) -> tuple[list, list]:
    """bench/run.py's scenarios at its sizes, and the servers they need."""
    names = [n for n in SIZES if (not only or n in only) and not (quick and SIZES[n][1] is None)]
    size = {n: SIZES[n][1 if quick else 0] for n in names}
    conc = {n: SIZES[n][3 if quick else 2] for n in names}
    small_n = SIZES["small"][1 if quick else 0]
    corpus = bench.make_corpus(SITE, small_n, 2048, 32768, "p", seed=1)
    big_n = SIZES["big"][1 if quick else 0]
    big = bench.make_corpus(SITE, big_n, 1 << 20, 3 << 20, "big", seed=2) if "big" in names else {}
    servers, chosen = [], []
    if {"small", "big", "scale"} & set(names):
        static = bench.StaticServer(SITE, BASE)
        servers.append(static)
        s_url = f"http://127.0.0.1:{static.port}"
    if {"latency", "c10k"} & set(names):
        latency = bench.LatencyServer(0.1, 4096, BASE)
        servers.append(latency)
        l_url = f"http://127.0.0.1:{latency.port}"
        latency_sha = bench.hashlib.sha256(latency.body).hexdigest()
    for name in names:
        n = size[name]
        if name == "small":
            urls, what = [f"{s_url}/p{i}.html" for i in range(n)], f"pages of 2-32 KiB from {static.kind}"
        elif name == "big":
            urls, what = [f"{s_url}/big{i}.html" for i in range(n)], f"pages of 1-3 MiB from {static.kind}"
        elif name == "scale":
            urls, what = [f"{s_url}/p{i % small_n}.html?n={i}" for i in range(n)], "URLs of small pages"
        else:
            urls, what = [f"{l_url}/{name[0]}{i}" for i in range(n)], "pages, 100 ms server delay"
        expected = {}
        for url in urls:
            page = url.rsplit("/", 1)[1].split("?")[0]
            expected[url] = corpus.get(page) or big.get(page) or latency_sha
        what = f"{n:,} {what}, concurrency {conc[name]:,}"
        chosen.append(bench.Scenario(name, what, urls, expected, conc[name], ["crawlsel"]))
    return chosen, servers


def run(bench, scenario, folder: Path, names: dict[str, list[str]], lists: Path) -> dict:
    """One run of one revision: bench/run.py's, with that revision's path and page names."""
    bench.CHILD_ENV = env(folder)
    bench.output_path = lambda tool, url, index, out: out.joinpath(*names[url])
    return bench.run_once("crawlsel", scenario, BASE / "run", lists)


def table(scenarios_run: list, results: dict, labels: tuple[str, str]) -> str:
    old, new = labels
    rows = [
        "| scenario | old median wall s | new median wall s | new/old | median of paired new/old "
        f"| old runs s ({old}) | new runs s ({new}) | bytes, exit |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for scenario in scenarios_run:
        a, b = results[scenario.name]["old"], results[scenario.name]["new"]
        ma, mb = (statistics.median(r["wall"] for r in rs) for rs in (a, b))
        paired = statistics.median(y["wall"] / x["wall"] for x, y in zip(a, b, strict=True))
        problems = [
            f"{label}: {sum(r['bad'] for r in rs)} pages wrong, {sum(bool(r['status']) for r in rs)} runs failed"
            for label, rs in (("old", a), ("new", b))
            if any(r["bad"] or r["status"] for r in rs)
        ]
        times = [" ".join(f"{r['wall']:.3f}" for r in rs) for rs in (a, b)]
        rows.append(
            f"| {scenario.name} | {ma:.3f} | {mb:.3f} | {mb / ma:.3f}x | {paired:.3f}x "
            f"| {times[0]} | {times[1]} | {'; '.join(problems) or 'all exact, all exit 0'} |"
        )
    rows += [
        "",
        "| scenario | revision | median pages/s | median user CPU s | median CPU s | median peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario in scenarios_run:
        for which, label in (("old", old), ("new", new)):
            rs = results[scenario.name][which]
            rows.append(
                f"| {scenario.name} | {which} ({label}) "
                f"| {statistics.median(len(scenario.urls) / r['wall'] for r in rs):,.0f} "
                f"| {statistics.median(r['user'] for r in rs):.3f} | {statistics.median(r['cpu'] for r in rs):.3f} "
                f"| {statistics.median(r['rss'] for r in rs):.1f} |"
            )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--only", default="", help=f"comma-separated, of {','.join(SIZES)}")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each revision per scenario")
    parser.add_argument("--quick", action="store_true", help="bench/run.py --quick's sizes (no c10k)")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    if only - set(SIZES):
        parser.error(f"unknown scenario {', '.join(sorted(only - set(SIZES)))}")
    # A SIGTERM unwinds like ^C: the servers stop and the exports go.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    BASE.mkdir(parents=True, exist_ok=True)
    exports = Path(tempfile.mkdtemp(prefix="exports-", dir=BASE))
    servers: list = []
    try:
        (old_sha, old_dir), (new_sha, new_dir) = export(args.old, exports), export(args.new, exports)
        bench = load_bench(new_dir)
        chosen, servers = scenarios(bench, args.quick, only)
        results: dict[str, dict[str, list[dict]]] = {}
        for scenario in chosen:
            names = {"old": page_names(old_dir, scenario.urls), "new": page_names(new_dir, scenario.urls)}
            folders = {"old": old_dir, "new": new_dir}
            lists = BASE / "lists" / scenario.name
            bench.write_lists(scenario, lists, {"pairs": BASE / "out", "curl": BASE / "out"})
            results[scenario.name] = {"old": [], "new": []}
            for rep in range(args.repeat):
                for which in ("old", "new") if rep % 2 == 0 else ("new", "old"):
                    r = run(bench, scenario, folders[which], names[which], lists)
                    results[scenario.name][which].append(r)
                    print(
                        f"versions: {scenario.name:7} {which} rep {rep + 1}: {r['wall']:.3f} s"
                        + (f", {r['bad']} pages wrong" if r["bad"] else "")
                        + (f" (exit {r['status']}: {' '.join(r['stderr'])})" if r["status"] else ""),
                        file=sys.stderr,
                    )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(BASE / "run", ignore_errors=True)
        shutil.rmtree(exports, ignore_errors=True)
    labels = (old_sha[:7], new_sha[:7])
    print(
        f"\n## crawlsel {labels[0]} (old) against {labels[1]} (new), {time.strftime('%Y-%m-%d %H:%M %Z')}, "
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"server {servers[0].kind if servers else '-'}, output on {ROOT}, {args.repeat} runs of each"
        f"{', quick sizes' if args.quick else ''}\n"
    )
    print(f"old {old_sha} {git('log', '-1', '--format=%s', old_sha).strip()[:100]}")
    print(f"new {new_sha} {git('log', '-1', '--format=%s', new_sha).strip()[:100]}\n")
    for scenario in chosen:
        print(f"- {scenario.name}: {scenario.what}")
    print("\n" + table(chosen, results, labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
