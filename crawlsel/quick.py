"""The ``crawlsel`` entry point: ``get URL...`` and ``fetch [FILE]...`` start without click.

Users call ``crawlsel get URL`` once per URL in shell loops; loading click and
building its commands is about 15 ms of a start that curl and wget finish in
under 10.  A command line of a command, its arguments, a few flags (``FLAGS``) and
a few of ``fetch``'s options with a value (``VALUED``: the folder, ``-c``,
``--per-host``, ``--workers``), with nothing for shell completion, is run here with
click's defaults (the tables below, which tests/test_quick.py holds equal to what
click parses); any other goes to ``crawlsel.cli``, which gives the same result for
these lines, only slower.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from crawlsel.models import DEFAULT_USER_AGENT

# What click passes for the options of crawlsel.options.common_options when none is given.
COMMON_DEFAULTS: dict[str, Any] = {
    "user_agent": DEFAULT_USER_AGENT,
    "headers": (),
    "connect_timeout": 10.0,
    "read_timeout": 30.0,
    "pipeline": 1,
    "cacert": None,
    "insecure": False,
    "pinned": (),
    "ip_version": None,
    "timeout": 120.0,
    "speed_limit": 0,
    "speed_time": 30.0,
    "retries": 2,
    "retry_delay": 1.0,
    "max_retry_wait": 60.0,
    "follow": True,
    "max_redirects": 10,
    "max_size": 1 << 30,
    "compressed": True,
    "trace": False,
    "proxy": None,
    "noproxy": None,
    "cookie_file": None,
    "cookie_jar": None,
}
GET_DEFAULTS: dict[str, Any] = {
    "keep_alive": False,
    "concurrency": 8,
    "include": False,
    "head_only": False,
    "output_file": None,
    "fail_quietly": False,
    "silent": False,
}
FETCH_DEFAULTS: dict[str, Any] = {
    "output_dir": Path("crawled_page"),
    "concurrency": 64,
    "per_host": 8,
    "keep_alive": True,
    "skip_existing": False,
    "quiet": False,
    "no_progress": False,
    "json_lines": False,
    "engine": "select",
    "workers": "auto",
    "update": False,
    "warc": None,
}


# A proxy the environment names is read and checked by crawlsel.options (and its errors
# are click's): a line run with one set goes there.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

# Flags (options without a value) a plain line may carry, exactly as spelled here,
# and the value each gives its parameter.
FLAGS: dict[str, dict[str, tuple[str, bool]]] = {
    "get": {"-s": ("silent", True), "--silent": ("silent", True)},
    "fetch": {
        "-q": ("quiet", True),
        "--quiet": ("quiet", True),
        "--no-progress": ("no_progress", True),
        "--json": ("json_lines", True),
        "--skip-existing": ("skip_existing", True),
        "--compressed": ("compressed", True),
        "--no-compressed": ("compressed", False),
    },
}


def _count(text: str) -> int | None:
    """``-c``, ``--per-host``: a number of 1 or more, as click's IntRange(min=1) takes it."""
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else None


def _workers(text: str) -> int | str | None:
    return "auto" if text == "auto" else _count(text)


def _folder(text: str) -> Path | None:
    return Path(text) if text else None


# Options with a value a plain fetch line may carry (``-o DIR``, ``--output-dir DIR`` or
# ``--output-dir=DIR``).  A value the conversion refuses (None) leaves the line to
# click, so that its error message is click's.
VALUED: dict[str, tuple[str, Any]] = {
    "-o": ("output_dir", _folder),
    "--output-dir": ("output_dir", _folder),
    "-c": ("concurrency", _count),
    "--concurrency": ("concurrency", _count),
    "--per-host": ("per_host", _count),
    "--workers": ("workers", _workers),
}


def plain_params(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The command and the parameters click would give its function, or None if not a plain line."""
    if not args or args[0] not in FLAGS or "_CRAWLSEL_COMPLETE" in os.environ:
        return None
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    command, flags = args[0], FLAGS[args[0]]
    params = {**(GET_DEFAULTS if command == "get" else FETCH_DEFAULTS), **COMMON_DEFAULTS}
    valued = VALUED if command == "fetch" else {}
    positional = []
    rest = iter(args[1:])
    for arg in rest:
        if arg in flags:
            name, value = flags[arg]
            params[name] = value
            continue
        option, equals, text = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option in valued:
            if not equals:
                text = next(rest, "")
                if text.startswith("-"):
                    return None  # a value click might take as an option: click's
            name, convert = valued[option]
            params[name] = convert(text)
            if params[name] is None:
                return None
        elif arg.startswith("-") and not (arg == "-" and command == "fetch"):
            return None  # another option, a bundle such as -qs, "--", a typo: click's
        else:
            positional.append(arg)
    if command == "get":
        return (command, {"urls": tuple(positional), **params}) if positional else None
    return command, {"sources": tuple(positional), **params}


def main() -> None:
    args = sys.argv[1:]
    plain = plain_params(args)
    if plain is None:
        from crawlsel.cli import main as click_main

        if args[:1] != ["get"] and args[:1] != ["fetch"]:
            click_main()  # crawl, the Redis commands, compare: the interpreter's own exit
            return
        try:
            click_main()
        except SystemExit as exit:  # get and fetch close what they open: leave as below
            if exit.code is None or isinstance(exit.code, int):
                _leave(exit.code or 0)
            raise
        return
    command, params = plain
    try:
        (_get if command == "get" else _fetch)(**params)
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            _leave(exit.code or 0)
        raise
    except (EOFError, KeyboardInterrupt):  # as click's main: before the run has its handler
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    except BrokenPipeError:  # as click's main: a closed stdout is not an error to show
        sys.stdout = _Quiet(sys.stdout)
        sys.stderr = _Quiet(sys.stderr)
        sys.exit(1)


def _leave(status: int) -> None:
    """Exit without the interpreter's teardown, which frees every module and object one
    by one: about 10 ms of a ``get``.  Nothing is left to do: pages are renamed into
    place, connections closed; only the standard streams may hold bytes."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: the interpreter's own exit reports it, as before
        sys.exit(status)
    os._exit(status)


def config_of(common: dict[str, Any], **specific: Any) -> Any:
    """``build_config`` for no options given: no CA file to check, no --insecure warning."""
    from crawlsel.models import Config

    unused = ("trace", "proxy", "noproxy", "cookie_file")  # no proxy and no cookies: both None in Config
    return Config(**{k: v for k, v in common.items() if k not in unused}, **specific)


def _fetch(
    sources: tuple[str, ...],
    output_dir: Path,
    concurrency: int,
    per_host: int,
    keep_alive: bool,
    skip_existing: bool,
    quiet: bool,
    no_progress: bool,
    json_lines: bool,
    engine: str,
    workers: int | str,
    **common: Any,
) -> None:
    """``crawlsel.cli.fetch`` with no option but ``FLAGS`` given."""
    from crawlsel.clirun import fetch_lists, readable_sources
    from crawlsel.report import RunReport

    sources = readable_sources(sources)
    config = config_of(
        common,
        output_dir=output_dir,
        concurrency=concurrency,
        per_host=per_host,
        keep_alive=keep_alive,
        skip_existing=skip_existing,
    )
    report = RunReport(json_out=sys.stdout if json_lines else None, quiet=quiet, progress=not no_progress)
    sys.exit(fetch_lists(config, sources, report, trace=False, engine=engine, workers=workers))


def _get(
    urls: tuple[str, ...],
    keep_alive: bool,
    concurrency: int,
    include: bool,
    head_only: bool,
    output_file: str | None,
    fail_quietly: bool,
    silent: bool,
    **common: Any,
) -> None:
    """``crawlsel.cli.get`` with no option but -s: bodies in order on stdout, errors on stderr."""
    from crawlsel.clirun import run_and_summarise, say
    from crawlsel.frontier import ListFrontier
    from crawlsel.ordered_output import OrderedOutput
    from crawlsel.report import RunReport, printable
    from crawlsel.sources import argument_records

    config = config_of(
        common,
        concurrency=concurrency,
        per_host=concurrency,
        keep_alive=keep_alive,
        method="GET",
        dedupe=False,
        raw_heads=False,
    )
    output = OrderedOutput(sys.stdout.buffer)
    report = RunReport(quiet=True)

    def on_result(result: Any) -> None:
        report.on_result(result)
        if result.error is not None and not output.closed and not silent:
            say(f"crawlsel: {printable(result.url)}: {printable(result.error)}")
        output.finished(result.index)

    frontier = ListFrontier(argument_records(urls), dedupe=config.dedupe)
    status = run_and_summarise(config, frontier, on_result, report, open_sink=output.open)
    if output.closed:
        # The reader went away (| head): as cat, stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(status)


class _Quiet:
    """click's _PacifyFlushWrapper: a stream whose flush ignores a closed pipe at exit."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
