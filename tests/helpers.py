"""Running ``crawlsel fetch --json`` in-process, for the tests that read its records."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crawlsel.cli import main


def fetch_records(
    tmp_path: Path, urls: list[str], *args: str, out: Path | None = None
) -> tuple[int, list[dict], Path]:
    """Write ``urls`` to a list file, fetch it quietly with --json; (exit status, records, folder)."""
    out = out or tmp_path / "out"
    source = tmp_path / "urls.txt"
    source.write_text("\n".join(urls) + "\n")
    result = CliRunner().invoke(
        main, ["fetch", str(source), "-o", str(out), "--json", "-q", *args], catch_exceptions=False
    )
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], out
