"""What the user sees: progress on stderr, the summary, JSON Lines on stdout, --trace.

Reporters only read ``FetchResult`` records; they decide nothing.  The live
display is drawn with rich, only when stderr is a terminal; otherwise nothing
moves and the summary is plain text with no ANSI codes.
"""

from __future__ import annotations

import re
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from crawlsel.models import FetchResult

if TYPE_CHECKING:
    from crawlsel.crawlfrontier import CrawlCounts

MAX_FAILURES_SHOWN = 20
MAX_HOSTS_SHOWN = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Latency histogram buckets, upper bounds in milliseconds.
_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, float("inf"))


def printable(text: str) -> str:
    """Escape control characters so that a URL or a reason cannot drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover


def human_ms(ms: float) -> str:
    return f"{ms:,.1f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


class _HostStats:
    __slots__ = ("pages", "saved", "bytes", "failed", "latencies")

    def __init__(self) -> None:
        self.pages = 0
        self.saved = 0
        self.bytes = 0
        self.failed = 0
        self.latencies = array("f")  # milliseconds; 4 bytes a page


class RunReport:
    """Collects the outcome of a run and prints it."""

    def __init__(
        self,
        *,
        json_out: IO[str] | None = None,
        stderr: IO[str] | None = None,
        quiet: bool = False,
        progress: bool = True,
        crawl: CrawlCounts | None = None,
    ) -> None:
        self.saved = 0
        self.robots_files = 0  # robots.txt answers of a crawl: not pages
        self._crawl = crawl
        self.skipped = 0
        self.bytes = 0
        self.failures: list[FetchResult] = []
        self.failed = 0  # URLs that ended with an error
        self.results = 0
        self.started = time.monotonic()
        self.json_closed = False  # the reader of --json went away (| head)
        self._hosts: dict[str, _HostStats] = {}
        self._json = json_out
        if json_out is not None:
            import json  # only runs with --json pay for loading it

            self._dumps: Callable[..., str] = json.dumps
        self._stderr = stderr if stderr is not None else sys.stderr
        self._quiet = quiet
        self._tty = _isatty(self._stderr)
        self._console: Any = None
        self._progress: Any = None
        if progress and self._tty and not quiet:
            # rich is imported only for a terminal that shows something (a quiet
            # ``get`` in a shell loop does not): pipelines start faster without it.
            self._console = _console(self._stderr)
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
                auto_refresh=False,  # refreshed from the event loop: no drawing thread
            )
            self._task = self._progress.add_task(self._progress_text(0), total=None)
            self._progress.start()

    @property
    def live(self) -> bool:
        """A progress display is being drawn."""
        return self._progress is not None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def on_result(self, result: FetchResult) -> None:
        if result.via == "robots" and result.error is None:
            self.robots_files += 1
            self._write_json(result)
            return
        self.results += 1
        host = _host_of(result.url)
        stats = self._hosts.get(host)
        if stats is None:
            stats = self._hosts[host] = _HostStats()
        stats.pages += 1
        if result.skipped:
            self.skipped += 1
        elif result.ok:
            self.saved += 1
            self.bytes += result.bytes
            stats.saved += 1
            stats.bytes += result.bytes
            stats.latencies.append(result.elapsed_ms)
        else:
            self.failed += 1
            stats.failed += 1
            if len(self.failures) < MAX_FAILURES_SHOWN:
                self.failures.append(result)
            if result.status is not None:
                stats.latencies.append(result.elapsed_ms)
        self._write_json(result)

    def _write_json(self, result: FetchResult) -> None:
        if self._json is not None and not self.json_closed:
            try:
                self._json.write(self._dumps(result.as_json(), ensure_ascii=False) + "\n")
                self._json.flush()
            except BrokenPipeError:
                self.json_closed = True

    def tick(self, open_connections: int, total: int | None = None) -> None:
        """Redraw the live display (called by a loop timer a few times a second).

        ``total`` is known only once the whole list has been read; until then the
        display shows a count, never a bar that would be wrong.
        """
        if self._progress is not None:
            self._progress.update(self._task, description=self._progress_text(open_connections, total))
            self._progress.refresh()

    def _progress_text(self, open_connections: int, total: int | None = None) -> str:
        elapsed = max(self.elapsed(), 1e-9)
        failed = f"  [red]{self.failed:,} failed[/]" if self.failed else ""
        done = f"{self.results:,}/{total:,}" if total is not None else f"{self.results:,}"
        return (
            f"[bold]{done}[/] pages  {self.results / elapsed:,.0f} pages/s  "
            f"{human_bytes(self.bytes / elapsed)}/s  {open_connections} open{failed}"
        )

    def close(
        self,
        *,
        interrupted: bool = False,
        summary: bool = True,
        connections: dict[str, int] | None = None,
    ) -> None:
        """Stop the live display and print the summary (unless quiet)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._quiet or not summary:
            return
        text = self.summary(interrupted=interrupted, connections=connections or {})
        if self._tty:
            if self._console is None:
                self._console = _console(self._stderr)
            self._console.print(text, markup=False, soft_wrap=True, end="")
        else:
            self._stderr.write(text)
            self._stderr.flush()

    # --- the summary ---------------------------------------------------------

    def summary(self, *, interrupted: bool = False, connections: dict[str, int] | None = None) -> str:
        """Plain text that fits one screen: totals, hosts, failures, latencies."""
        elapsed = self.elapsed()
        rate = (self.results - self.skipped) / elapsed if elapsed > 0 else 0.0
        head = (
            ("interrupted: " if interrupted else "")
            + f"{self.saved:,} saved ({human_bytes(self.bytes)}), {self.failed:,} failed, "
            + (f"{self.skipped:,} skipped, " if self.skipped else "")
            + f"{elapsed:.2f} s, {rate:,.0f} pages/s"
        )
        lines = [head]
        if self._crawl is not None:
            lines.append(_crawl_line(self._crawl, self.robots_files))
        if self.results > 1:
            lines += self._host_table(connections or {})
        if self.failures:
            lines.append("failed:")
            for result in self.failures:
                lines.append(f"  {printable(result.url)}: {printable(result.error or '')}")
            if self.failed > len(self.failures):
                lines.append(f"  and {self.failed - len(self.failures):,} more; see --json")
        histogram = self._histogram()
        if histogram:
            lines += histogram
        return "\n".join(lines) + "\n"

    def _host_table(self, connections: dict[str, int]) -> list[str]:
        rows = [("host", "pages", "bytes", "failed", "median", "p95", "conns")]
        hosts = sorted(self._hosts.items(), key=lambda item: -item[1].pages)
        for host, stats in hosts[:MAX_HOSTS_SHOWN]:
            lat = sorted(stats.latencies)
            median = human_ms(median_of(lat)) if lat else "-"
            p95 = human_ms(lat[min(len(lat) - 1, int(len(lat) * 0.95))]) if lat else "-"
            conns = connections.get(_bare_host(host))
            rows.append(
                (
                    printable(host),
                    f"{stats.pages:,}",
                    human_bytes(stats.bytes),
                    f"{stats.failed:,}",
                    median,
                    p95,
                    "-" if conns is None else f"{conns:,}",
                )
            )
        out = ["  " + line for line in aligned(rows)]
        if len(hosts) > MAX_HOSTS_SHOWN:
            out.append(f"  and {len(hosts) - MAX_HOSTS_SHOWN:,} more hosts")
        return out

    def _histogram(self) -> list[str]:
        counts = [0] * len(_BUCKETS)
        for stats in self._hosts.values():
            for ms in stats.latencies:
                for i, bound in enumerate(_BUCKETS):
                    if ms < bound:
                        counts[i] += 1
                        break
        total = sum(counts)
        if total < 2:
            return []
        first = next(i for i, c in enumerate(counts) if c)
        last = max(i for i, c in enumerate(counts) if c)
        peak = max(counts)
        lines = ["latency:"]
        for i in range(first, last + 1):
            bound = _BUCKETS[i]
            label = f"< {human_ms(bound)}" if bound != float("inf") else f">= {human_ms(_BUCKETS[i - 1])}"
            bar = "#" * max(1 if counts[i] else 0, round(30 * counts[i] / peak))
            lines.append(f"  {label:>11}  {bar:<30}  {counts[i]:,}")
        return lines


class TraceWriter:
    """``--trace``: one line per selector event or state change, on stderr."""

    def __init__(self, stream: IO[str] | None = None, *, label: str = "") -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._t0 = time.monotonic()
        self._label = label  # "worker 2 pid 1234 ": whose fd (fetch --workers N)

    def __call__(self, fd: int, text: str) -> None:
        self._stream.write(f"+{time.monotonic() - self._t0:.3f} {self._label}fd={fd} {printable(text)}\n")
        self._stream.flush()


def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    return Console(file=stream, highlight=False)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _host_of(url: str) -> str:
    # Results carry URLs that passed parse_url (or invalid lines): a split is enough.
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "(invalid)"
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return netloc.lower().rsplit("@", 1)[-1] or "(invalid)"


def _bare_host(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def comparison_rows(runs: list[Any]) -> list[tuple[str, ...]]:
    """``crawlsel compare``'s table: one row per engine, speed-up over blocking."""
    base = next((r for r in runs if r.engine == "blocking"), None)
    rows: list[tuple[str, ...]] = [
        ("engine", "wall s", "pages/s", "CPU s", "peak threads", "peak RSS MiB", "vs blocking")
    ]
    for r in runs:
        speedup = f"{base.wall_s / r.wall_s:.1f}x" if base is not None and r.wall_s else "-"
        rows.append(
            (
                r.engine,
                f"{r.wall_s:.3f}",
                f"{r.pages / r.wall_s:,.0f}" if r.wall_s else "-",
                f"{r.cpu_s:.2f}",
                str(r.peak_threads),
                f"{r.peak_rss_mib:.1f}",
                speedup,
            )
        )
    return rows


def print_comparison(runs: list[Any], note: str, stream: IO[str] | None = None) -> None:
    stream = stream if stream is not None else sys.stderr
    rows = comparison_rows(runs)
    if _isatty(stream):
        from rich.console import Console
        from rich.table import Table

        table = Table(*rows[0], title="crawlsel compare")
        for row in rows[1:]:
            table.add_row(*row)
        console = Console(file=stream)
        console.print(table)
        console.print(note, soft_wrap=False)
        return
    for line in aligned(rows):
        stream.write(line + "\n")
    stream.write(note + "\n")
    stream.flush()


def aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as lines of columns, the first left-aligned and the others right-aligned.

    Widths are terminal cells, not characters: a CJK character takes two cells and
    a combining accent none (rich measures them as it draws its own tables).
    """
    from rich.cells import cell_len  # only when a table is drawn: not start-up time

    widths = [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            pad = " " * (width - cell_len(cell))
            cells.append(cell + pad if i == 0 else pad + cell)
        lines.append("  ".join(cells))
    return lines


def median_of(values: list[float]) -> float:
    import statistics  # the summary is printed once: its import is not start-up time

    return statistics.median(values)


def _crawl_line(counts: CrawlCounts, robots_files: int) -> str:
    """Pages by depth, and what the crawl left out and why."""
    depths = ", ".join(f"{depth}: {n:,}" for depth, n in sorted(counts.by_depth.items()))
    left_out = [
        f"{n:,} {why}"
        for n, why in (
            (counts.robots, "disallowed by robots.txt"),
            (counts.out_of_scope, "out of scope"),
            (counts.traps, "traps"),
            (counts.over_limit, "over --max-pages/--max-per-host"),
        )
        if n
    ]
    return f"crawl: pages by depth {depths or '-'}; {robots_files:,} robots.txt read" + (
        f"; left out: {', '.join(left_out)}" if left_out else ""
    )
