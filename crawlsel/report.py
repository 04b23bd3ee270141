"""What the user sees: progress on stderr, the summary, JSON Lines on stdout.

Reporters only read ``FetchResult`` records; they decide nothing.  Progress is
drawn with rich, and only when stderr is a terminal; otherwise the summary is
plain text with no ANSI codes.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from crawlsel.models import FetchResult

MAX_FAILURES_SHOWN = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Escape control characters so that a URL or a reason cannot drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover


class RunReport:
    """Collects the outcome of a run and prints it."""

    def __init__(
        self,
        *,
        json_out: IO[str] | None = None,
        stderr: IO[str] | None = None,
        quiet: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.saved = 0
        self.bytes = 0
        self.failures: list[FetchResult] = []
        self.results = 0
        self.started = time.monotonic()
        self._json = json_out
        self._stderr = stderr if stderr is not None else sys.stderr
        self._quiet = quiet
        self._is_tty = self._stderr.isatty()
        show = self._is_tty and not quiet if progress is None else progress
        self._progress: Progress | None = None
        if show:
            self._console = Console(file=self._stderr)
            self._progress = Progress(
                TextColumn("[bold]fetching"),
                BarColumn(bar_width=None),
                TaskProgressColumn(show_speed=True),
                TextColumn("{task.completed:,.0f} pages  {task.fields[rate]} pages/s  {task.fields[size]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._task = self._progress.add_task("fetch", total=None, rate="0", size="0 B")
            self._progress.start()

    @property
    def failed(self) -> int:
        return len(self.failures)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def on_result(self, result: FetchResult) -> None:
        self.results += 1
        if result.ok:
            self.saved += 1
            self.bytes += result.bytes
        else:
            self.failures.append(result)
        if self._json is not None:
            self._json.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
            self._json.flush()
        if self._progress is not None:
            elapsed = max(self.elapsed(), 1e-9)
            self._progress.update(
                self._task,
                completed=self.results,
                rate=f"{self.results / elapsed:,.0f}",
                size=human_bytes(self.bytes),
            )

    def close(self, *, interrupted: bool = False, summary: bool = True) -> None:
        """Stop the progress display and print the summary (unless quiet)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._quiet or not summary:
            return
        self._stderr.write(self.summary(interrupted=interrupted))
        self._stderr.flush()

    def summary(self, *, interrupted: bool = False) -> str:
        elapsed = self.elapsed()
        rate = self.results / elapsed if elapsed > 0 else 0.0
        lines = [
            ("interrupted: " if interrupted else "")
            + f"{self.saved:,} saved ({human_bytes(self.bytes)}), {self.failed:,} failed, "
            + f"{elapsed:.2f} s, {rate:,.0f} pages/s"
        ]
        for result in self.failures[:MAX_FAILURES_SHOWN]:
            lines.append(f"  failed: {printable(result.url)}: {printable(result.error or '')}")
        if self.failed > MAX_FAILURES_SHOWN:
            lines.append(f"  and {self.failed - MAX_FAILURES_SHOWN:,} more; see --json")
        return "\n".join(lines) + "\n"
