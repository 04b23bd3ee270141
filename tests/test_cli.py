"""The command line as people use it: a real terminal, pipes, signals, get's options, --trace."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crawlsel.cli import main

from servers import HTTPTestServer

CRAWLSEL = [sys.executable, "-m", "crawlsel"]


def crawl(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write_list(tmp_path: Path, urls: list[str]) -> str:
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(urls) + "\n")
    return str(path)


# --- a real terminal ----------------------------------------------------------------


def run_in_pty(args: list[str], timeout: float = 20.0) -> tuple[int, bytes]:
    """Run with stdout and stderr on a pseudo-terminal; return status and what it showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "100"}
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            shown += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=5), shown


def test_progress_and_summary_on_a_terminal_and_no_ansi_when_redirected(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.add(f"/{i}", b"x" * 1000, delay=0.05) for i in range(12)]
    source = write_list(tmp_path, urls)
    status, shown = run_in_pty([*CRAWLSEL, "fetch", source, "-o", str(tmp_path / "a"), "-c", "1"])
    assert status == 0
    text = shown.decode("utf-8", "replace")
    assert "\x1b[" in text  # the live display drew itself
    assert "pages/s" in text and "open" in text
    assert "/12\x1b" in text or "/12 pages" in text  # the total, once the list is read
    assert "12 saved (11.7 KiB), 0 failed" in text  # the summary stays on screen

    proc = subprocess.run(
        [*CRAWLSEL, "fetch", source, "-o", str(tmp_path / "b"), "-c", "1"], capture_output=True, timeout=20
    )
    assert proc.returncode == 0
    assert b"\x1b" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith(b"12 saved (11.7 KiB), 0 failed")
    assert b"latency:" in proc.stderr and b"host" in proc.stderr


def test_no_color_and_no_progress_are_honoured(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/{i}", b"y", delay=0.05) for i in range(6)]
    status, shown = run_in_pty(
        [
            *CRAWLSEL,
            "fetch",
            write_list(tmp_path, urls),
            "-o",
            str(tmp_path / "o"),
            "-c",
            "1",
            "--no-progress",
        ]
    )
    assert status == 0
    assert b"\x1b[" not in shown
    assert b"6 saved" in shown


# --- pipelines --------------------------------------------------------------------


def test_fetch_from_stdin_starts_before_stdin_ends(server: HTTPTestServer, tmp_path: Path) -> None:
    first, second = server.add("/first", b"1"), server.add("/second", b"2")
    proc = subprocess.Popen(
        [*CRAWLSEL, "fetch", "-", "--json", "-q", "-o", str(tmp_path / "out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((first + "\n").encode())
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready, "no result while stdin was still open"
    assert json.loads(proc.stdout.readline())["url"] == first
    proc.stdin.write((second + "\n").encode())
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["url"] == second
    proc.stdout.close()
    assert proc.wait(timeout=10) == 0


def test_json_output_closed_early_stops_quietly(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/{i}", b"z") for i in range(300)]
    head = subprocess.run(
        f"{sys.executable} -m crawlsel fetch {write_list(tmp_path, urls)} -q --json -o {tmp_path / 'o'} | head -n 1",
        shell=True,
        capture_output=True,
        timeout=20,
    )
    assert head.stderr == b""
    assert json.loads(head.stdout)["error"] is None


# --- interruption and resume -----------------------------------------------------------


def test_ctrl_c_leaves_no_partial_file_and_skip_existing_resumes(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.add(f"/p{i}", f"page {i} ".encode() * 2000, delay=0.15) for i in range(16)]
    source = write_list(tmp_path, urls)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CRAWLSEL, "fetch", source, "-o", str(out), "-c", "2"], stderr=subprocess.PIPE)
    folder = out / f"127.0.0.1_{server.port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(list(folder.glob("p*"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert stderr.startswith(b"interrupted: ")
    saved = sorted(p.name for p in folder.iterdir())
    assert not [name for name in saved if name.startswith(".")]  # no temp files left
    assert 3 <= len(saved) < 16
    for name in saved:  # every file under a final name is complete
        i = int(name[1:])
        assert (folder / name).read_bytes() == f"page {i} ".encode() * 2000
    before = len(server.requests)
    resumed = subprocess.run(
        [*CRAWLSEL, "fetch", source, "-o", str(out), "--skip-existing", "--json", "-q"],
        capture_output=True,
        timeout=20,
    )
    assert resumed.returncode == 0
    records = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert sum(r["skipped"] for r in records) == len(saved)
    assert len(server.requests) - before == 16 - len(saved)  # nothing fetched twice
    assert len(list(folder.iterdir())) == 16


def test_sigterm_is_an_interruption_too(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add(f"/{i}", b"t", delay=0.2) for i in range(20)]
    proc = subprocess.Popen(
        [*CRAWLSEL, "fetch", write_list(tmp_path, urls), "-o", str(tmp_path / "o"), "-c", "1", "-q"]
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 130


# --- get ----------------------------------------------------------------------------


def test_get_include_prints_status_and_headers(server: HTTPTestServer) -> None:
    url = server.add("/i", b"body", headers=[("X-Test", "yes")])
    result = crawl("get", "-i", url)
    head, body = result.stdout_bytes.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nX-Test: yes" in head
    assert body == b"body"


def test_get_head_sends_head_and_prints_headers_only(server: HTTPTestServer) -> None:
    url = server.add("/h", b"never sent")
    result = crawl("get", "-I", url)
    assert result.exit_code == 0
    assert server.requests[0].method == "HEAD"
    assert result.stdout_bytes.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 10\r\n" in result.stdout_bytes
    assert result.stdout_bytes.endswith(b"\r\n\r\n")


def test_get_fail_prints_nothing_for_errors(server: HTTPTestServer) -> None:
    ok = server.add("/ok", b"ok;")
    missing = server.url("/missing")
    loud = crawl("get", ok, missing)
    assert loud.stdout_bytes == b"ok;not found"
    assert loud.exit_code == 1
    quiet = crawl("get", "-f", ok, missing)
    assert quiet.stdout_bytes == b"ok;"
    assert quiet.exit_code == 1
    assert quiet.stderr == f"crawlsel: {missing}: HTTP 404 Not Found\n"
    silent = crawl("get", "-f", "-s", ok, missing)
    assert silent.stderr == ""
    assert silent.exit_code == 1


def test_get_output_file(server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add("/o", b"into a file")
    result = crawl("get", "-o", str(tmp_path / "page.html"), url)
    assert result.exit_code == 0
    assert result.stdout_bytes == b""
    assert (tmp_path / "page.html").read_bytes() == b"into a file"


def test_get_pipe_closed_by_reader(server: HTTPTestServer) -> None:
    urls = [server.add(f"/{i}", b"line\n" * 20000) for i in range(5)]
    proc = subprocess.run(
        f"{sys.executable} -m crawlsel get {' '.join(urls)} | head -n 1",
        shell=True,
        capture_output=True,
        timeout=20,
    )
    assert proc.stdout == b"line\n"
    assert proc.stderr == b""


# --- start-up ------------------------------------------------------------------------


# What a plain-http get or fetch (stderr not a terminal, no --json) never uses; "crawlsel.crawl"
# stands for every crawl module, "redis" for every Redis one.  Loading ssl and json is about
# 11 ms of every start, click 15 ms, rich 20 ms; https, --json and a terminal load them when used.
UNUSED = (
    "ssl json rich redis hiredis sqlite3 selectolax protego dataclasses asyncio hashlib statistics random "
    "crawlsel.crawl crawlsel.compare crawlsel.engines.procedure crawlsel.workercommands crawlsel.tls"
).split()
# Without an option the entry point (crawlsel.quick) does not load click (nor the inspect
# module click loads) either.
UNUSED_WITHOUT_OPTIONS = [*UNUSED, "click", "inspect", "crawlsel.cli", "crawlsel.options", "crawlsel.engines"]


def loaded_by(argv: list[str], stdin: str, cwd: Path, entry: str) -> list[str]:
    """Run crawlsel's entry point in a fresh interpreter; the modules of ``UNUSED`` it loaded."""
    probe = (
        "import os, sys\n"
        "def leave(code, exit=os._exit):\n"  # crawlsel.quick leaves with os._exit
        "    print('\\n@', int(code or 0), *sorted(sys.modules), file=sys.stderr, flush=True)\n"
        "    exit(int(code or 0))\n"
        "os._exit = leave\n"
        f"from {entry} import main\n"
        f"sys.argv = ['crawlsel', *{argv!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    leave(exit.code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=30
    )
    _, _, last = proc.stderr.rpartition("\n@ ")
    status, *modules = last.split()
    assert status == "0", proc.stderr
    return modules


def unused_among(modules: list[str], unused: list[str]) -> list[str]:
    return [m for m in modules if any(m == u or m.startswith((u + ".", u + "_")) for u in unused)]


@pytest.mark.parametrize(
    ("argv", "unused"),
    [
        (["get", "URL"], UNUSED_WITHOUT_OPTIONS),
        (["fetch", "-"], UNUSED_WITHOUT_OPTIONS),
        (["get", "-s", "URL"], UNUSED_WITHOUT_OPTIONS),
        (["get", "-f", "URL"], UNUSED),
        (
            ["fetch", "-", "-o", "out", "-c", "4", "--per-host", "2", "--no-compressed", "-q"],
            UNUSED_WITHOUT_OPTIONS,
        ),
        (["fetch", "-", "-o", "out", "--retries", "1", "-q"], UNUSED),
        (["get", "--keep-alive", "URL"], [*UNUSED, "crawlsel.crawlcommand"]),
    ],
    ids=[
        "get",
        "fetch",
        "get-flag",
        "get-option",
        "fetch-plain-options",
        "fetch-options",
        "get-lazy-commands",
    ],
)
@pytest.mark.parametrize("entry", ["crawlsel.quick", "crawlsel.cli"])
def test_a_plain_http_run_loads_only_what_it_uses(
    server: HTTPTestServer, tmp_path: Path, argv: list[str], unused: list[str], entry: str
) -> None:
    """-X importtime shows each of these costing a ``crawlsel get`` in a shell loop."""
    url = server.add("/a", b"a")
    if entry == "crawlsel.cli":  # click's own entry: no fast path, but no unused subcommand
        unused = [u for u in unused if u not in UNUSED_WITHOUT_OPTIONS or u in UNUSED]
    argv = [url if arg == "URL" else arg for arg in argv]
    modules = loaded_by(argv, url + "\n", tmp_path, entry)
    assert "crawlsel.run" in modules
    assert unused_among(modules, unused) == []
    if argv[0] == "fetch":
        saved = tmp_path / ("out" if "out" in argv else "crawled_page") / f"127.0.0.1_{server.port}" / "a"
        assert saved.read_bytes() == b"a"


def test_json_and_a_terminal_load_what_they_use(server: HTTPTestServer, tmp_path: Path) -> None:
    """The probe above would pass if it never saw a module: here the same probe does."""
    url = server.add("/a", b"a")
    modules = loaded_by(["fetch", "-", "--json", "-q"], url + "\n", tmp_path, "crawlsel.quick")
    assert unused_among(modules, UNUSED) == ["json", *[m for m in modules if m.startswith("json.")]]
    assert "click" not in modules  # a flag of crawlsel.quick's
    assert "click" in loaded_by(
        ["fetch", "-", "--retries", "2", "-q"], url + "\n", tmp_path, "crawlsel.quick"
    )


def test_the_installed_script_runs_outside_the_sources(tmp_path: Path) -> None:
    """The package as installed (every subpackage in it), not the sources in the cwd."""
    script = Path(sys.executable).parent / "crawlsel"
    if not script.exists():
        pytest.skip("crawlsel is not installed in this environment")
    proc = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("crawlsel, version ")


# --- --trace ---------------------------------------------------------------------------


def trace_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("+")]


def test_trace_keep_alive_get_shows_one_connect_and_two_exchanges(server: HTTPTestServer) -> None:
    a, b = server.add("/a.html", b"A" * 100), server.add("/b.html", b"B" * 100)
    result = crawl("get", "--keep-alive", "--trace", a, b)
    assert result.exit_code == 0
    lines = trace_lines(result)
    assert sum(" connect 127.0.0.1:" in line for line in lines) == 1
    assert sum("response complete" in line for line in lines) == 2
    assert any(line.endswith("reused for GET /b.html") for line in lines)
    assert lines[0].startswith("+0.0") and " fd=" in lines[0]
    assert any("EVENT_WRITE -> connected, send " in line for line in lines)
    assert any("status 200, 100 B expected" in line for line in lines)


def test_trace_without_keep_alive_shows_two_connects(server: HTTPTestServer) -> None:
    a, b = server.add("/a.html", b"A"), server.add("/b.html", b"B")
    lines = trace_lines(crawl("get", "--trace", a, b))
    assert sum(" connect 127.0.0.1:" in line for line in lines) == 2
    assert not any("reused" in line for line in lines)


# --- help -------------------------------------------------------------------------------


def test_help_has_examples_and_exit_codes() -> None:
    for args in ([], ["fetch"], ["get"]):
        text = crawl(*args, "--help").stdout
        assert "Examples:" in text
        assert "Exit status:" in text
    assert crawl("--version").stdout.startswith("crawlsel, version ")


@pytest.mark.parametrize(
    ("soft", "hard", "warnings"),
    [
        (100, 100, [b"crawlsel: warning: the open-file limit is 100; --concurrency lowered from 500 to 36"]),
        (100, 4096, []),  # raised quietly: the hard limit allows it
    ],
)
def test_open_file_limit_is_raised_or_concurrency_clamped(
    server: HTTPTestServer, tmp_path: Path, soft: int, hard: int, warnings: list[bytes]
) -> None:
    import resource

    urls = [server.add(f"/{i}", b"f") for i in range(5)]
    proc = subprocess.run(
        [
            *CRAWLSEL,
            "fetch",
            write_list(tmp_path, urls),
            "-o",
            str(tmp_path / "o"),
            "-c",
            "500",
            "--no-progress",
        ],
        capture_output=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        timeout=20,
    )
    assert proc.returncode == 0
    assert [line for line in proc.stderr.splitlines() if b"warning" in line] == warnings
