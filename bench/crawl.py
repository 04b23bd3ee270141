"""crawlsel crawl against wget -r, Scrapy's CrawlSpider and crawlsel fetch (issue 13).

    python bench/crawl.py [--quick] [--repeat N] [--no-scrapy] [--profile]
    python bench/run.py --only crawl          (the same, as a scenario of make bench)

Two sites, each its own origin on one local nginx:

- real: the Python documentation of the distribution's python3.11-doc package
  (installed with apt-get when missing and this is root), as nobody here wrote it;
- generated: 5,000 linked HTML pages of 2-32 KiB in 33 folders (seeded, so the same
  bytes every time), a stylesheet naming an image through url(), a script and
  20 images; every page is reachable from the front page.

Each tool crawls each site from its front page into /dev/shm (when it exists), in
interleaved repetitions (the order rotates), and the tables give medians; a ratio of two
tools is the median of the repetitions' ratios, each of two runs seconds apart:

    wget -q -r -l inf -np -p -nH -P OUT URL
    crawlsel crawl URL --depth inf --no-parent -p -c 32 --per-host 32 -q -o OUT
    crawlsel crawl URL --depth inf --no-parent -p -c 32 -q -o OUT    (per-host 4, its default)
    crawlsel fetch LIST -c 32 --per-host 32 -q -o OUT   (LIST: the URLs the crawl saved)
    scrapy runspider bench/clients/scrapy_crawl.py, CONCURRENT_REQUESTS(_PER_DOMAIN)=32
    crawlsel crawl ... --state FILE          (only once `crawlsel crawl --help` lists it)

crawlsel runs from the sources next to this file (`python -m crawlsel` with PYTHONPATH
on them), so a worktree measures its own code. Scrapy is installed with pip into its
own venv next to the output (never crawlsel's venv); when that fails the table says
so. Wall time, user + system CPU (wait4) and peak RSS (the child's VmHWM) as in
bench/run.py. After the runs, each tool's last saved tree is compared with wget's
(crawlsel saves under HOST_PORT/, percent-escapes "?" in names, so names are
compared decoded) and every file with the file nginx served; every difference is
listed.
"""

from __future__ import annotations

import argparse
import filecmp
import json
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
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchservers import ensure_nginx, free_port, wait_for_port  # noqa: E402
from run import CHILD_ENV, PY, TreePeak  # noqa: E402

CONCURRENCY = 32
DOC_PACKAGE = "python3.11-doc"
DOC_ROOTS = ("/usr/share/doc/python3.11/html", "/usr/share/doc/python3-doc/html")
# Bump when the generator changes: the site is regenerated when its stamp differs.
SITE_VERSION = "crawl-site-2"
ENV = {
    **CHILD_ENV,
    "PYTHONPATH": os.pathsep.join(p for p in (str(HERE.parent), CHILD_ENV.get("PYTHONPATH")) if p),
}
CRAWLSEL = [PY, "-m", "crawlsel"]

WGET = "wget -r -np -p"
CRAWL = "crawlsel crawl --per-host 32"
CRAWL_DEFAULT = "crawlsel crawl (per-host 4)"
CRAWL_STATE = "crawlsel crawl --state"
CRAWL_WORKERS = "crawlsel crawl --per-host 32 --workers 2"
FETCH = "crawlsel fetch (same URLs)"
FETCH_1 = "crawlsel fetch --workers 1 (same URLs)"
SCRAPY = "Scrapy CrawlSpider"


# --- the sites --------------------------------------------------------------------------


def python_docs() -> Path | None:
    """The html root of the distribution's Python documentation, installed if missing and possible."""
    for attempt in range(2):
        for root in DOC_ROOTS:
            if Path(root, "index.html").exists():
                return Path(root)
        if attempt or os.geteuid() != 0 or not shutil.which("apt-get"):
            break
        print(f"bench: installing {DOC_PACKAGE} (apt-get) ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", DOC_PACKAGE], check=False, capture_output=True)
    return None


_WORDS = (
    "crawl frontier socket select page link folder index request response header body "
    "origin robots scope depth parser buffer record queue timer loop event byte stream"
).split()


def generate_site(root: Path, pages: int, seed: int = 13) -> Path:
    """``pages`` HTML pages of 2-32 KiB (folder indexes and the front page included) under
    ``root``, with /static/site.css (naming an image by url()), site.js and 20 images."""
    stamp = root / ".stamp"
    want = f"{SITE_VERSION} pages={pages} seed={seed}"
    if stamp.exists() and stamp.read_text() == want:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    folders = [f"sec{a}" for a in range(8)] + [f"sec{a}/part{b}" for a in range(8) for b in range(3)]
    static = root / "static"
    (static / "img").mkdir(parents=True)
    images = [f"/static/img/i{i}.png" for i in range(20)]
    for name in images + ["/static/img/bg.png"]:
        (root / name.lstrip("/")).write_bytes(b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(1024, 8192)))
    (static / "site.css").write_text(
        "body { font: 16px/1.4 serif; background: url('img/bg.png') repeat-x; }\n"
        + "".join(f".c{i} {{ color: #{rng.randrange(1 << 24):06x}; }}\n" for i in range(200))
    )
    (static / "site.js").write_text("".join(f"var v{i} = {rng.randrange(10**9)};\n" for i in range(300)))
    # Pages: 4,967 p*.html spread over the folders, plus an index per folder and the front page.
    leaf_count = pages - len(folders) - 1
    leaves: dict[str, list[str]] = {folder: [] for folder in folders}
    all_pages: list[str] = []
    for i in range(leaf_count):
        folder = rng.choice(folders)
        url = f"/{folder}/p{i}.html"
        leaves[folder].append(url)
        all_pages.append(url)

    def rel(url: str, here: str) -> str:
        """A link as pages write them: relative, root-relative or folder form at random."""
        kind = rng.random()
        if kind < 0.4:
            return url
        return os.path.relpath(url, os.path.dirname(here)) + ("/" if url.endswith("/") else "")

    def page(here: str, title: str, links: list[str]) -> bytes:
        size = rng.randint(2048, 32768 - 1024)  # the last paragraph may add up to ~700 bytes
        head = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
            f'<link rel="stylesheet" href="{rel("/static/site.css", here)}">\n'
            f'<script src="/static/site.js"></script></head>\n<body>\n<h1>{title}</h1>\n'
            f'<img src="{rel(rng.choice(images), here)}" alt="figure">\n<ul>\n'
            + "".join(f'<li><a href="{link}">{link}</a></li>\n' for link in links)
            + "</ul>\n"
        )
        parts = [head]
        length = len(head)
        while length < size:
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 80)))
            para = f'<p class="c{rng.randrange(200)}">{words} <span>{rng.choice(_WORDS)}</span></p>\n'
            parts.append(para)
            length += len(para)
        parts.append("</body></html>\n")
        return "".join(parts).encode()

    def write(url: str, body: bytes) -> None:
        path = root / (url.lstrip("/") + ("index.html" if url.endswith("/") else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    tops = [f"/{folder}/" for folder in folders if "/" not in folder]
    write("/", page("/", "Front page", [rel(t, "/") for t in tops]))
    for folder in folders:
        here = f"/{folder}/"
        subs = [f"/{f}/" for f in folders if f.startswith(folder + "/")]
        links = ["../"] + [rel(s, here) for s in subs] + [rel(u, here) for u in leaves[folder]]
        write(here, page(here, f"Index of {folder}", links))
    for folder in folders:
        mine = leaves[folder]
        for n, url in enumerate(mine):
            links = ["./"]
            if n + 1 < len(mine):
                links.append(rel(mine[n + 1], url))
            links += [rel(rng.choice(all_pages), url) for _ in range(8)]
            write(url, page(url, f"Page {url}", links))
    stamp.write_text(want)
    return root


# --- the server ---------------------------------------------------------------------------


class Nginx:
    """One nginx, one origin (port) per site, with the usual MIME types: crawlers decide
    what to scan from Content-Type."""

    def __init__(self, roots: dict[str, Path], work: Path) -> None:
        nginx = ensure_nginx()
        if not nginx:
            raise SystemExit("bench: the crawl scenario needs nginx (apt-get install nginx-light)")
        self.ports = {name: free_port() for name in roots}
        types = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else _TYPES
        servers = "".join(
            f"  server {{ listen 127.0.0.1:{self.ports[name]} backlog=4096; root {root}; }}\n"
            for name, root in roots.items()
        )
        conf = work / "nginx-crawl.conf"
        conf.write_text(
            f"""worker_processes 1;
daemon off;
error_log {work}/nginx-crawl-error.log;
pid {work}/nginx-crawl.pid;
events {{ worker_connections 4096; }}
http {{
  {types}
  default_type application/octet-stream;
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  sendfile on;
{servers}}}
"""
        )
        self.proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
        for port in self.ports.values():
            wait_for_port(port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


_TYPES = (
    "types { text/html html htm; text/css css; application/javascript js; image/png png; "
    "image/svg+xml svg; application/json json; text/plain txt py; }"
)


# --- the tools ------------------------------------------------------------------------------


def scrapy_python(work: Path) -> tuple[Path | None, str]:
    """A Python with Scrapy, in its own venv under ``work`` (pip-installed once), or why not."""
    venv = work / "scrapy-venv"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import scrapy; print(scrapy.__version__)"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return python, done.stdout.strip()
    print("bench: installing Scrapy into", venv, "(pip) ...", file=sys.stderr)
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
    )
    if made.returncode == 0:
        made = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "scrapy"], capture_output=True, text=True
        )
    if made.returncode != 0:
        return None, (made.stderr.strip().splitlines() or ["pip failed"])[-1]
    done = subprocess.run(check, capture_output=True, text=True)
    return (python, done.stdout.strip()) if done.returncode == 0 else (None, done.stderr.strip())


def has_state_option() -> bool:
    """Whether this crawlsel has --state (the SQLite frontier): the row it measures is
    skipped until then."""
    done = subprocess.run([*CRAWLSEL, "crawl", "--help"], capture_output=True, text=True, env=ENV)
    return "--state" in done.stdout


@dataclass
class Site:
    name: str
    what: str
    root: Path
    url: str
    tools: list[str]
    urls: Path | None = None  # the URL list fetch gets: what a crawl saved
    results: dict[str, list[dict]] = field(default_factory=dict)
    trees: dict[str, Path] = field(default_factory=dict)


def command(tool: str, site: Site, out: Path, work: Path, scrapy: Path | None) -> list[str]:
    n = str(CONCURRENCY)
    crawl = [
        *CRAWLSEL,
        "crawl",
        site.url,
        "--depth",
        "inf",
        "--no-parent",
        "-p",
        "-c",
        n,
        "-q",
        "-o",
        str(out),
    ]
    if tool == WGET:
        return ["wget", "-q", "-r", "-l", "inf", "-np", "-p", "-nH", "-P", str(out), site.url]
    if tool == CRAWL:
        return [*crawl, "--per-host", n]
    if tool == CRAWL_DEFAULT:
        return crawl
    if tool == CRAWL_WORKERS:
        return [*crawl, "--per-host", n, "--workers", "2"]
    if tool == CRAWL_STATE:
        # HOOK (issue 13, --state): the SQLite frontier; adjust the flag's spelling here
        # once it lands. The state file is removed before each run (run_once).
        return [*crawl, "--per-host", n, "--state", str(work / "crawl-state.db")]
    if tool == FETCH:
        assert site.urls is not None
        return [*CRAWLSEL, "fetch", str(site.urls), "-c", n, "--per-host", n, "-q", "-o", str(out)]
    if tool == FETCH_1:
        assert site.urls is not None
        return [
            *CRAWLSEL,
            "fetch",
            str(site.urls),
            "-c",
            n,
            "--per-host",
            n,
            "-q",
            "-o",
            str(out),
            "--workers",
            "1",
        ]
    if tool == SCRAPY:
        assert scrapy is not None
        return [
            str(scrapy),
            "-m",
            "scrapy",
            "runspider",
            str(HERE / "clients" / "scrapy_crawl.py"),
            "-a",
            f"start={site.url}",
            "-a",
            f"out={out}",
            "-s",
            f"CONCURRENT_REQUESTS={n}",
            "-s",
            f"CONCURRENT_REQUESTS_PER_DOMAIN={n}",
        ]
    raise ValueError(tool)


def run_once(argv: list[str], out: Path, work: Path) -> dict:
    """One run of a tool into a fresh ``out``: wall, CPU, peak RSS, files saved, exit status."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for stale in work.glob("crawl-state.db*"):
        stale.unlink()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=work)
    peak = TreePeak(proc.pid)
    while True:
        peak.sample()
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "rss": (peak.kib or usage.ru_maxrss) / 1024,
        "own_rss": peak.own_kib / 1024,
        "files": sum(len(files) for _, _, files in os.walk(out)),
        "status": os.waitstatus_to_exitcode(status),
        "stderr": stderr.splitlines()[-3:],
    }


def crawled_urls(site: Site, work: Path) -> Path:
    """The URLs one crawl (`--json`) saved, as the list fetch is given."""
    out = work / "urls-run"
    shutil.rmtree(out, ignore_errors=True)
    argv = command(CRAWL, site, out, work, None) + ["--json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=work)
    shutil.rmtree(out, ignore_errors=True)
    urls = []
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if record.get("path"):
            urls.append(record["url"])
    path = work / f"urls-{site.name}.txt"
    path.write_text("".join(u + "\n" for u in urls))
    print(f"bench: crawl {site.name}: {len(urls)} URLs saved by a --json crawl -> {path}", file=sys.stderr)
    return path


def run_site(site: Site, work: Path, repeat: int, scrapy: Path | None) -> None:
    tools = site.tools
    for rep in range(repeat):
        order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
        for tool in order:
            out = work / "out" / site.name / _slug(tool)
            result = run_once(command(tool, site, out, work, scrapy), out, work)
            site.results.setdefault(tool, []).append(result)
            site.trees[tool] = out
            print(
                f"bench: crawl {site.name:9} {tool:28} rep {rep + 1}: {result['wall']:6.2f} s, "
                f"{result['files']} files, exit {result['status']}"
                + (f" ({' | '.join(result['stderr'])})" if result["status"] not in (0, 1, 8) else ""),
                file=sys.stderr,
            )


def _slug(tool: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in tool).strip("-")


# --- comparing trees -------------------------------------------------------------------------


def tree(out: Path, tool: str) -> dict[str, Path]:
    """Relative file name (as wget -nH spells it: "?" literal) -> file, for one tool's output."""
    base = out
    if tool.startswith("crawlsel"):
        hosts = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
        if len(hosts) != 1:
            return {f"<{len(hosts)} host folders>": out}
        base = hosts[0]
    files = {}
    for folder, _, names in os.walk(base):
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(base).as_posix()
            # crawlsel escapes "?" and other unsafe characters; wget (unix names) does not.
            files[unquote(rel) if tool.startswith("crawlsel") else rel] = path
    return files


def compare(site: Site, tool: str) -> list[str]:
    """Every difference between ``tool``'s last tree and wget's, and every file that differs
    from what the server has."""
    mine, theirs = tree(site.trees[tool], tool), tree(site.trees[WGET], WGET)
    notes = []
    for rel in sorted(set(theirs) - set(mine)):
        notes.append(f"only wget: {rel}")
    for rel in sorted(set(mine) - set(theirs)):
        twin = next(
            (o for o in sorted(mine) if o != rel and filecmp.cmp(mine[o], mine[rel], shallow=False)), None
        )
        notes.append(f"only {tool}: {rel}" + (f" (the same bytes as {twin})" if twin else ""))
    for rel in sorted(set(mine) & set(theirs)):
        if not filecmp.cmp(mine[rel], theirs[rel], shallow=False):
            notes.append(f"bytes differ: {rel}")
        if tool.startswith("crawlsel") and mine[rel].name != Path(rel).name:
            notes.append(f"named differently: wget {rel}, {tool} {mine[rel].name}")
    for rel, path in sorted(mine.items()):
        source = site.root / rel.partition("?")[0]
        if source.is_file() and not filecmp.cmp(source, path, shallow=False):
            notes.append(f"not the server's bytes: {rel}")
    return notes


def served_check(site: Site, tool: str) -> str:
    """How many of a tool's files are byte for byte the file nginx served for that name."""
    files = tree(site.trees[tool], tool)
    exact = unnamed = 0
    for rel, path in files.items():
        source = site.root / rel.partition("?")[0]
        if not source.is_file():
            unnamed += 1
        elif filecmp.cmp(source, path, shallow=False):
            exact += 1
    return f"{len(files)} files, {exact} byte-identical to the served file of their name" + (
        f", {unnamed} named after no served file" if unnamed else ""
    )


# --- tables ------------------------------------------------------------------------------------


def medians(runs: list[dict]) -> dict:
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss": statistics.median(r["rss"] for r in runs),
        "rss_max": max(r["rss"] for r in runs),
        "own_rss": statistics.median(r["own_rss"] for r in runs),
        "files": statistics.median(r["files"] for r in runs),
        "status": sorted({r["status"] for r in runs}),
        "walls": [r["wall"] for r in runs],
    }


def table(site: Site) -> str:
    m = {tool: medians(runs) for tool, runs in site.results.items()}
    lines = [
        f"### crawl, {site.name}: {site.what}",
        "",
        "| tool | wall s | CPU s | peak RSS MiB (median, max) | files | files/s | exit | wall vs wget | every wall s |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    wget = m.get(WGET, {}).get("wall")
    for tool, r in sorted(m.items(), key=lambda kv: kv[1]["wall"]):
        vs = f"{r['wall'] / wget:.3f}x" if wget else "-"
        lines.append(
            f"| {tool} | {r['wall']:.3f} | {r['cpu']:.2f} | {r['rss']:.1f}, {r['rss_max']:.1f} | {r['files']:.0f} "
            f"| {r['files'] / r['wall']:,.0f} | {','.join(map(str, r['status']))} | {vs} "
            f"| {' '.join(f'{w:.2f}' for w in r['walls'])} |"
        )
    return "\n".join(lines) + "\n"


def paired(site: Site, a: str, b: str) -> tuple[float, float, float] | None:
    """Wall of ``a`` over wall of ``b``: the median of the repetitions' ratios (the two ran
    seconds apart), and their lowest and highest.  The VM's speed drifts 20-30 % within
    minutes: a ratio of two medians may take them from different phases of it (the
    2026-12-06 01:19 run: 0.477x by the medians, 0.534x paired, 6 of 7 repetitions above 0.5x)."""
    runs_a, runs_b = site.results.get(a), site.results.get(b)
    if not runs_a or not runs_b:
        return None
    ratios = [x["wall"] / y["wall"] for x, y in zip(runs_a, runs_b, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def targets(real: Site, generated: Site, state_note: str) -> str:
    def ratio(site: Site, a: str, b: str) -> str:
        """Wall of ``a`` over wall of ``b``, paired, its range, and the ratio of the medians."""
        found = paired(site, a, b)
        if found is None:
            return "-"
        mid, low, high = found
        wall_a, wall_b = (medians(site.results[t])["wall"] for t in (a, b))
        return f"{mid:.3f}x (repetitions {low:.3f}-{high:.3f}; medians' ratio {wall_a / wall_b:.3f}x)"

    rm = {tool: medians(runs) for tool, runs in real.results.items()}

    same = {}
    for site in (real, generated):
        diffs = compare(site, CRAWL) if CRAWL in site.trees and WGET in site.trees else ["not run"]
        same[site.name] = "yes" if not diffs else f"{len(diffs)} differences (listed below)"
    # the same pages: a rate ratio is the inverse of the wall ratio
    crawl_rate = ratio(generated, FETCH, CRAWL)
    state = ratio(generated, CRAWL, CRAWL_STATE) if CRAWL_STATE in generated.results else state_note
    rows = [
        "| target | must | target | measured |",
        "|---|---|---|---|",
        f"| same files as `wget -r -np -p`, byte-identical | yes | yes | real: {same[real.name]}; "
        f"generated: {same[generated.name]} |",
        f"| wall, real site (`--per-host 32`) | <= 0.5x wget | <= 0.25x wget, <= 0.05x Scrapy | "
        f"{ratio(real, CRAWL, WGET)} wget, {ratio(real, CRAWL, SCRAPY)} Scrapy; default per-host: "
        f"{ratio(real, CRAWL_DEFAULT, WGET)} wget |",
        f"| generated site: crawl rate vs fetch of the same URLs | >= 0.5x | >= 0.8x | {crawl_rate} |",
        "| peak RSS, real site | <= 60 MiB | <= 40 MiB | "
        + (
            f"{rm[CRAWL]['rss']:.1f} MiB with its scanning process (max {rm[CRAWL]['rss_max']:.1f}; "
            f"the crawl's own {rm[CRAWL]['own_rss']:.1f})"
            if CRAWL in rm
            else "-"
        )
        + " |",
        f"| `--state` vs in-memory frontier, generated site | >= 0.7x | >= 0.9x | {state} |",
    ]
    return "\n".join(rows) + "\n"


def profile(site: Site, work: Path) -> str:
    """cProfile of one crawl of ``site`` (--per-host 32): the top 25 by cumulative and by own time."""
    out = work / "profile-run"
    shutil.rmtree(out, ignore_errors=True)
    stats = work / "crawl.prof"
    argv = command(CRAWL, site, out, work, None)
    subprocess.run(
        [PY, "-m", "cProfile", "-o", str(stats), *argv[1:]], env=ENV, cwd=work, capture_output=True
    )
    shutil.rmtree(out, ignore_errors=True)
    report = subprocess.run(
        [
            PY,
            "-c",
            "import pstats, sys; p = pstats.Stats(sys.argv[1]); p.sort_stats('cumulative').print_stats(25);"
            " p.sort_stats('tottime').print_stats(25)",
            str(stats),
        ],
        capture_output=True,
        text=True,
    )
    return report.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition, 1,000 generated pages, no Scrapy")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-scrapy", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also cProfile one crawl of the real site")
    args = parser.parse_args(argv)
    subprocess.run([PY, "-m", "compileall", "-q", str(HERE.parent / "crawlsel")], check=False, env=ENV)
    shm = Path("/dev/shm")
    work = (shm if shm.is_dir() else Path(tempfile.gettempdir())) / "crawlsel-bench" / "crawl"
    work.mkdir(parents=True, exist_ok=True)
    docs = python_docs()
    if docs is None:
        print(
            f"bench: crawl: no Python documentation ({DOC_PACKAGE}); the real site is left out",
            file=sys.stderr,
        )
    gen_pages = 1000 if args.quick else 5000
    gen_root = generate_site(work / f"site-{gen_pages}", gen_pages)  # --quick keeps the full one
    roots = {"generated": gen_root} | ({"real": docs} if docs else {})
    server = Nginx(roots, work)
    scrapy, scrapy_version = (None, "skipped") if args.quick or args.no_scrapy else scrapy_python(work)
    if scrapy is None and not (args.quick or args.no_scrapy):
        print(
            f"bench: Scrapy could not be installed ({scrapy_version}); its row is left out", file=sys.stderr
        )
    state = has_state_option()
    state_note = "skipped: `crawlsel crawl --help` has no --state yet (hook: CRAWL_STATE in bench/crawl.py)"
    base_tools = [WGET, CRAWL, CRAWL_WORKERS, CRAWL_DEFAULT, FETCH, FETCH_1]
    sites = []
    if docs:
        sites.append(
            Site(
                "real",
                f"the Python 3.11 documentation ({DOC_PACKAGE}, {docs}), from nginx",
                docs,
                f"http://127.0.0.1:{server.ports['real']}/",
                base_tools + ([SCRAPY] if scrapy else []),
            )
        )
    sites.append(
        Site(
            "generated",
            f"{gen_pages:,} linked pages of 2-32 KiB in 33 folders, CSS, JS, 21 images, from nginx",
            gen_root,
            f"http://127.0.0.1:{server.ports['generated']}/",
            base_tools + ([CRAWL_STATE] if state else []),
        )
    )
    repeat = 1 if args.quick else args.repeat
    prof = ""
    try:
        for site in sites:
            site.urls = crawled_urls(site, work)
            run_site(site, work, repeat, scrapy)
        if args.profile and docs:
            prof = profile(sites[0], work)
    finally:
        server.stop()
    wget_version = subprocess.run(["wget", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(
        f"\n## crawl benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {wget_version}, "
        f"Scrapy {scrapy_version}, load average {os.getloadavg()[0]:.1f}, output on {work}, "
        f"{repeat} repetitions, concurrency {CONCURRENCY}\n"
    )
    for site in sites:
        print(table(site))
    by_name = {site.name: site for site in sites}
    if "real" in by_name:
        print("### crawl: against the targets of issue 13\n")
        print(targets(by_name["real"], by_name["generated"], state_note))
    for site in sites:
        for tool in site.trees:
            if tool == WGET:
                print(f"{site.name}, {WGET}: {served_check(site, WGET)}")
                continue
            diffs = compare(site, tool)
            print(f"{site.name}, {tool} vs wget: {served_check(site, tool)}; {len(diffs)} differences")
            for line in diffs:
                print(f"  - {line}")
        print()
    shutil.rmtree(work / "out", ignore_errors=True)  # the trees are compared; tmpfs is memory
    record = {site.name: site.results for site in sites}
    (work / "results.json").write_text(json.dumps(record, indent=1))
    if prof:
        print("### profile: crawlsel crawl of the real site\n\n```\n" + prof + "```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
