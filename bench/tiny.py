"""The tiny scenario: what one call costs in a shell loop, start-up included.

``crawlsel get URL`` for one small page, and ``crawlsel fetch`` of the 6 demo pages
(demo/site, as ``make run`` fetches them), next to curl and wget doing the same
from the same nginx.  One run is a few milliseconds, so each command runs many
times, interleaved (one of each per round), and the table gives medians; every
run's bytes are checked against the files served.  ``python -m crawlsel`` is
shown beside the installed script: ``-m`` imports runpy (and importlib.util,
contextlib), the script does not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "demo" / "site"
# The pages of urls.txt, as paths on the demo site.
DEMO_PAGES = [
    "/",
    "/about.html",
    "/articles/",
    "/articles/event-loop.html",
    "/articles/keep-alive.html",
    "/img/logo.png",
]


def copy_demo(site: Path) -> Path:
    """The demo site under the bench's nginx root (``/demo/...``)."""
    target = site / "demo"
    shutil.copytree(DEMO, target, dirs_exist_ok=True)
    return target


def served(root: Path, path: str) -> Path:
    return root / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _time(cmd: list[str], env: dict[str, str], stdout: Path | None, cwd: Path) -> tuple[float, float, int]:
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if stdout:
        out.close()  # type: ignore[union-attr]
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def run(
    crawlsel: list[str], python: str, base_url: str, site: Path, work: Path, runs: int, env: dict[str, str]
) -> str:
    """Both parts of the scenario; returns its Markdown table."""
    sys.path.insert(0, str(HERE.parent))
    from crawlsel.sources import parse_url
    from crawlsel.writer import page_path

    root = copy_demo(site)
    urls = [f"{base_url}/demo{path}" for path in DEMO_PAGES]
    one = urls[1]
    expected = {url: _digest(served(root, path)) for url, path in zip(urls, DEMO_PAGES, strict=True)}
    work.mkdir(parents=True, exist_ok=True)
    (work / "urls.txt").write_text("".join(u + "\n" for u in urls))
    # crawlsel fetch as make run calls it: urls.txt in the current folder, saved under crawled_page/.
    curl_out, fetch_out, wget_out = work / "curl", work / "crawled_page", work / "wget"
    (work / "curl.cfg").write_text(
        "".join(f'url = "{u}"\noutput = "{curl_out}/{i}"\n' for i, u in enumerate(urls))
    )
    body = work / "body"

    def one_ok() -> bool:
        return _digest(body) == expected[one]

    def saved(where: Callable[[int, str], Path]) -> Callable[[], bool]:
        return lambda: all(_digest(where(i, u)) == expected[u] for i, u in enumerate(urls))

    cases: list[tuple[str, str, list[str], Path | None, Callable[[], bool], Path | None]] = [
        ("1 URL", "crawlsel get", [*crawlsel, "get", one], body, one_ok, None),
        ("1 URL", "python -m crawlsel get", [python, "-m", "crawlsel", "get", one], body, one_ok, None),
        ("1 URL", "curl -s", ["curl", "-s", one], body, one_ok, None),
        ("1 URL", "wget -q -O -", ["wget", "-q", "-O", "-", one], body, one_ok, None),
        (
            "6 demo pages",
            "crawlsel fetch",
            [*crawlsel, "fetch", "urls.txt"],
            None,
            saved(lambda i, u: fetch_out.joinpath(*page_path(parse_url(u)))),
            fetch_out,
        ),
        (
            "6 demo pages",
            "curl -s -K (one connection)",
            ["curl", "-s", "-K", str(work / "curl.cfg")],
            None,
            saved(lambda i, u: curl_out / str(i)),
            curl_out,
        ),
        (
            "6 demo pages",
            "wget -q -x -i",
            ["wget", "-q", "-x", "-nH", "-P", str(wget_out), "-i", str(work / "urls.txt")],
            None,
            saved(lambda i, u: served(wget_out, "/demo" + DEMO_PAGES[i])),
            wget_out,
        ),
    ]
    cases = [c for c in cases if shutil.which(c[2][0]) or os.path.exists(c[2][0])]
    times: dict[str, list[tuple[float, float]]] = {c[1]: [] for c in cases}
    wrong: dict[str, int] = dict.fromkeys(times, 0)
    for _ in range(runs):
        for _, tool, cmd, stdout, check, folder in cases:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            wall, cpu, status = _time(cmd, env, stdout, work)
            times[tool].append((wall, cpu))
            if status != 0 or not check():
                wrong[tool] += 1
    print(f"bench: tiny     {runs} runs of each of {len(cases)} commands", file=sys.stderr)
    rows = [
        f"### tiny: one call as in a shell loop, from nginx: 1 small page, and the 6 demo pages (medians of {runs})",
        "",
        "| what | command | wall ms | min ms | CPU ms | wall vs curl | bytes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for part in ("1 URL", "6 demo pages"):
        tools = [c[1] for c in cases if c[0] == part]
        curl = next((t for t in tools if t.startswith("curl")), None)
        curl_wall = statistics.median(w for w, _ in times[curl]) if curl else None
        for tool in tools:
            walls = [w for w, _ in times[tool]]
            wall = statistics.median(walls)
            ratio = f"{wall / curl_wall:.1f}x" if curl_wall else "-"
            ok = "all exact" if not wrong[tool] else f"{wrong[tool]} runs wrong"
            rows.append(
                f"| {part} | {tool} | {wall * 1e3:.1f} | {min(walls) * 1e3:.1f} "
                f"| {statistics.median(c for _, c in times[tool]) * 1e3:.1f} | {ratio} | {ok} |"
            )
    return "\n".join(rows) + "\n"
