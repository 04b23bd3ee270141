"""``crawlsel compare``: the same URL list through each engine, measured.

Each engine runs as its own ``crawlsel fetch`` process (so that CPU time, peak
RSS and peak thread count are its own), into its own temporary folder; the saved
bytes of all engines are then checked to be identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineRun:
    engine: str
    wall_s: float
    cpu_s: float
    peak_threads: int
    peak_rss_mib: float
    pages: int
    failed: int
    files: dict[str, str]  # relative path -> sha256 of what was saved

    def as_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "wall_s": round(self.wall_s, 4),
            "pages_per_s": round(self.pages / self.wall_s, 1) if self.wall_s else None,
            "cpu_s": round(self.cpu_s, 4),
            "peak_threads": self.peak_threads,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "pages": self.pages,
            "failed": self.failed,
        }


def run_engine(engine: str, source: str, concurrency: int, extra: list[str]) -> EngineRun:
    out = tempfile.mkdtemp(prefix=f"crawlsel-compare-{engine}-", dir=_scratch())
    command = [
        sys.executable,
        "-m",
        "crawlsel",
        "fetch",
        source,
        "-o",
        out,
        "--engine",
        engine,
        "-c",
        str(concurrency),
        "--per-host",
        str(concurrency),
        "-q",
        "--json",
        *extra,
    ]
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        peak_threads, peak_rss_kib = 1, 0
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        output = b""
        while True:
            threads, rss = _proc_status(proc.pid)
            peak_threads, peak_rss_kib = max(peak_threads, threads), max(peak_rss_kib, rss)
            output += proc.stdout.read() or b""
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
                break
            time.sleep(0.003)
        wall = time.perf_counter() - started
        os.set_blocking(proc.stdout.fileno(), True)
        output += proc.stdout.read()
        proc.stdout.close()
        records = [json.loads(line) for line in output.splitlines() if line.strip()]
        return EngineRun(
            engine=engine,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_threads=peak_threads,
            peak_rss_mib=(peak_rss_kib or usage.ru_maxrss) / 1024,
            pages=len(records),
            failed=sum(1 for r in records if r["error"]),
            files=_digests(out),
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def compare(
    source: str, engines: list[str], concurrency: int, repeat: int, extra: list[str]
) -> list[EngineRun]:
    """Medians over ``repeat`` interleaved rounds, one run per engine per round."""
    runs: dict[str, list[EngineRun]] = {engine: [] for engine in engines}
    for round_number in range(repeat):
        order = engines[round_number % len(engines) :] + engines[: round_number % len(engines)]
        for engine in order:
            runs[engine].append(run_engine(engine, source, concurrency, extra))
    medians = []
    for engine, results in runs.items():
        wall = statistics.median(r.wall_s for r in results)
        medians.append(
            EngineRun(
                engine=engine,
                wall_s=wall,
                cpu_s=statistics.median(r.cpu_s for r in results),
                peak_threads=max(r.peak_threads for r in results),
                peak_rss_mib=max(r.peak_rss_mib for r in results),
                pages=results[0].pages,
                failed=max(r.failed for r in results),
                files=results[0].files,
            )
        )
    return medians


def same_bytes(runs: list[EngineRun]) -> bool:
    return all(run.files == runs[0].files for run in runs)


def interpret(runs: list[EngineRun], concurrency: int) -> str:
    """A sentence on what the numbers show."""
    by = {r.engine: r for r in runs}
    parts = []
    base = by.get("blocking")
    fastest = min(runs, key=lambda r: r.wall_s)
    if base is not None and fastest.engine != "blocking":
        speedup = base.wall_s / fastest.wall_s
        cpu_bound = base.cpu_s > 0.6 * base.wall_s
        kind = (
            "CPU-bound (the server answers at once)" if cpu_bound else "latency-bound (time goes to waiting)"
        )
        parts.append(
            f"This list is {kind}: {fastest.engine} is {speedup:.1f}x faster than one blocking socket"
            + (
                f", close to the {concurrency}x that {concurrency} connections allow."
                if not cpu_bound and speedup > 0.7 * concurrency
                else "."
            )
        )
    if "select" in by and "coroutine" in by:
        gap = by["coroutine"].wall_s / by["select"].wall_s - 1
        parts.append(
            f"Generator coroutines are {abs(gap) * 100:.0f}% {'slower' if gap > 0 else 'faster'} than state objects on the same loop."
        )
    if "threads" in by and "select" in by:
        t, s = by["threads"], by["select"]
        parts.append(
            f"Threads used {t.peak_threads} threads and {t.cpu_s:.2f} s of CPU against "
            f"{s.peak_threads} and {s.cpu_s:.2f} s for one selector loop."
        )
    return " ".join(parts)


def _proc_status(pid: int) -> tuple[int, int]:
    threads = rss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    threads = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return threads, rss


def _digests(root: str) -> dict[str, str]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _scratch() -> str | None:
    # tmpfs when there is one: a disk with online discard makes writes after a delete erratic.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
