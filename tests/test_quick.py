"""The entry point's plain lines (crawlsel.quick): the same parameters, Config and output as click's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlsel.cli import main
from crawlsel.options import build_config
from crawlsel.quick import COMMON_DEFAULTS, config_of, plain_params

from servers import HTTPTestServer

CRAWLSEL = [sys.executable, "-m", "crawlsel"]

PLAIN_LINES = [
    ["get", "http://h/a"],
    ["get", "http://h/a", "https://h/b", "not a url"],
    ["fetch"],
    ["fetch", "list.txt", "-"],
    ["get", "-s", "http://h/a", "--silent"],
    ["fetch", "-q", "list.txt", "--json", "--no-progress", "--skip-existing", "--quiet"],
    # the options with a value the bench and most scripts give (crawlsel.quick.VALUED)
    ["fetch", "urls.txt", "-o", "out", "-c", "16", "--per-host", "16", "--no-compressed", "-q"],
    ["fetch", "--output-dir=o dir", "--concurrency=3", "--workers", "2", "--compressed", "-"],
    ["fetch", "--workers=auto", "--per-host", "08", "-c", "1", "--workers", "1"],
]


def click_params(args: list[str]) -> dict[str, object]:
    command = main.commands[args[0]]
    with command.make_context(args[0], args[1:]) as ctx:
        return ctx.params


@pytest.mark.parametrize("args", PLAIN_LINES, ids=" ".join)
def test_a_plain_line_gets_the_parameters_click_gives(args: list[str], tmp_path: Path) -> None:
    plain = plain_params(args)
    assert plain is not None
    command, params = plain
    assert command == args[0]
    assert params == click_params(args), "an option's default changed: update crawlsel/quick.py's tables"


@pytest.mark.parametrize("name", ["get", "fetch"])
def test_no_option_of_a_plain_command_reads_the_environment(name: str) -> None:
    """quick.py does not look at environment variables: an option that did would need it to."""
    command = main.commands[name]
    assert main.context_settings.get("auto_envvar_prefix") is None
    for param in command.params:
        assert not getattr(param, "envvar", None), (
            f"{param.name} reads {param.envvar}: teach crawlsel/quick.py"
        )


@pytest.mark.parametrize(
    ("args", "specific"),
    [
        (["fetch"], {"output_dir": Path("crawled_page"), "concurrency": 64, "per_host": 8}),
        (["get", "http://h/"], {"concurrency": 8, "per_host": 8, "keep_alive": False, "dedupe": False}),
        (["fetch", "--no-compressed"], {"output_dir": Path("o"), "concurrency": 3, "per_host": 2}),
    ],
    ids=["fetch", "get", "fetch --no-compressed"],
)
def test_a_plain_line_builds_the_config_click_builds(args: list[str], specific: dict[str, object]) -> None:
    common = {k: v for k, v in click_params(args).items() if k in COMMON_DEFAULTS}
    assert common.keys() == COMMON_DEFAULTS.keys()
    assert config_of(common, **specific) == build_config(common, **specific)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["get"],  # click says a URL is required
        ["get", "-i", "http://h/a"],
        ["get", "http://h/a", "--keep-alive"],
        ["fetch", "--json=1"],
        ["fetch", "-qo", "out"],
        ["fetch", "--", "list.txt"],
        ["get", "-sf", "http://h/a"],
        ["get", "-o", "out", "http://h/a"],  # get's -o is a file: click's
        ["fetch", "-c", "0"],  # click's errors for the values click refuses
        ["fetch", "-c", "x"],
        ["fetch", "-c", "-1"],
        ["fetch", "--per-host", "²"],
        ["fetch", "--workers", "0"],
        ["fetch", "-o"],
        ["fetch", "-o", ""],
        ["fetch", "-o", "-q"],
        ["fetch", "--output-dir="],
        ["fetch", "-ofolder"],
        ["fetch", "-c=3"],
        ["get", "-s"],
        ["fetch", "-h"],
        ["--version"],
        ["crawl", "http://h/"],
        ["compare", "urls.txt"],
    ],
    ids=lambda args: " ".join(args) or "(none)",
)
def test_any_other_line_is_left_to_click(args: list[str]) -> None:
    assert plain_params(args) is None


def test_shell_completion_is_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_CRAWLSEL_COMPLETE", "bash_source")
    assert plain_params(["get", "http://h/a"]) is None


# --- the same run either way, against a real server ------------------------------------


def test_plain_get_writes_what_the_click_command_writes(server: HTTPTestServer) -> None:
    urls = [server.add("/a", b"A" * 3000), server.add("/missing", b"gone\n", status=404), "ftp://h/x"]
    quick = subprocess.run([*CRAWLSEL, "get", *urls], capture_output=True, timeout=30)
    clicked = CliRunner().invoke(main, ["get", *urls], catch_exceptions=False)
    assert quick.returncode == clicked.exit_code == 1
    assert quick.stdout == clicked.stdout_bytes
    assert quick.stdout.startswith(b"A" * 3000)
    assert quick.stderr.decode() == clicked.stderr
    assert "/missing: HTTP 404" in clicked.stderr and "ftp://h/x" in clicked.stderr


def test_plain_fetch_saves_and_summarises_as_the_click_command(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.add(f"/p{i}.html", f"page {i}".encode()) for i in range(6)]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\nnot-a-url\n")
    quick = subprocess.run([*CRAWLSEL, "fetch"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert quick.returncode == 1, quick.stderr
    saved = tmp_path / "crawled_page" / f"127.0.0.1_{server.port}"
    assert sorted(p.name for p in saved.iterdir()) == [f"p{i}.html" for i in range(6)]
    assert (saved / "p3.html").read_bytes() == b"page 3"
    assert quick.stderr.startswith("6 saved (36 B), 1 failed, ")
    assert "not-a-url" in quick.stderr


def test_plain_fetch_of_a_missing_list_is_a_usage_error(tmp_path: Path) -> None:
    quick = subprocess.run([*CRAWLSEL, "fetch", "nope.txt"], cwd=tmp_path, capture_output=True, text=True)
    clicked = CliRunner().invoke(main, ["fetch", str(tmp_path / "nope.txt")])
    assert quick.returncode == clicked.exit_code == 2
    assert quick.stderr.startswith("crawlsel: error: ") and "nope.txt" in quick.stderr
    assert clicked.stderr.startswith("crawlsel: error: ")


def test_a_click_error_is_still_clicks() -> None:
    proc = subprocess.run([*CRAWLSEL, "get", "--no-such-option", "http://h/"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Error: No such option '--no-such-option'." in proc.stderr
    assert proc.stderr.startswith("Usage: python -m crawlsel get [OPTIONS] URL...")


def test_get_and_fetch_with_options_leave_nothing_unwritten(server: HTTPTestServer, tmp_path: Path) -> None:
    """Both leave with os._exit after flushing the standard streams: a file and --json lines are whole."""
    urls = [server.add(f"/b{i}", bytes([65 + i]) * 70000) for i in range(3)]
    out = tmp_path / "body"
    got = subprocess.run([*CRAWLSEL, "get", "-o", str(out), *urls], capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == b"".join(bytes([65 + i]) * 70000 for i in range(3))
    listed = tmp_path / "urls.txt"
    listed.write_text("\n".join(urls) + "\n")
    fetched = subprocess.run(
        [*CRAWLSEL, "fetch", str(listed), "-o", str(tmp_path / "o"), "--json", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(line.split('"url": ')[1].split(",")[0] for line in fetched.stdout.splitlines()) == [
        f'"{u}"' for u in urls
    ]


def test_plain_flags_do_what_clicks_do(server: HTTPTestServer, tmp_path: Path) -> None:
    urls = [server.add("/a", b"A"), server.add("/missing", b"gone", status=404)]
    quick = subprocess.run([*CRAWLSEL, "get", "-s", *urls], capture_output=True, timeout=30)
    clicked = CliRunner().invoke(main, ["get", "-s", *urls], catch_exceptions=False)
    assert (quick.returncode, quick.stdout, quick.stderr) == (1, clicked.stdout_bytes, b"")
    assert clicked.exit_code == 1 and clicked.stderr == ""
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    fetched = subprocess.run(
        [*CRAWLSEL, "fetch", "--json", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert fetched.returncode == 1 and fetched.stderr == ""
    assert sorted(line.split(",")[0] for line in fetched.stdout.splitlines()) == [
        f'{{"url": "{u}"' for u in urls
    ]


def test_a_plain_get_honours_the_proxy_the_environment_names(server: HTTPTestServer) -> None:
    """http_proxy reaches crawlsel.options: a plain line with it set is not run without it."""
    from daemons import closed_port

    url = server.add("/p", b"direct")
    env = {**os.environ, "http_proxy": f"http://127.0.0.1:{closed_port()}"}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    proc = subprocess.run([*CRAWLSEL, "get", url], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "proxy" in proc.stderr and url in proc.stderr
