"""The ``crawlsel`` command: options in, exit status out.

A thin shell over the dispatcher: it validates options (in Click types), builds a
``Config``, wires sources, writer and reporter together, and is the one place that
maps outcomes to exit codes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from crawlsel import __version__
from crawlsel.dispatcher import Dispatcher
from crawlsel.errors import ExitStatus, InvalidURL, SourceError
from crawlsel.loop import EventLoop
from crawlsel.models import DEFAULT_USER_AGENT, Config, FetchResult, InvalidLine, Target
from crawlsel.report import RunReport, printable
from crawlsel.sources import check_readable, parse_url, read_targets
from crawlsel.tls import make_context
from crawlsel.writer import OrderedOutput, PageWriter

EXIT_CODES_HELP = """\b
Exit status:
  0    every URL was fetched with a 2xx status and saved
  1    at least one URL failed (network error, invalid URL, HTTP status >= 300)
  2    usage error or unreadable URL list
  130  interrupted (Ctrl-C)"""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class HeaderType(click.ParamType):
    """``"Name: value"`` as curl's -H; ``"Name:"`` removes a default header."""

    name = "HEADER"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        name, sep, field_value = text.partition(":")
        name, field_value = name.strip(), field_value.strip()
        if not sep or not _TOKEN.match(name):
            self.fail(f"{text!r} is not of the form 'Name: value'", param, ctx)
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in field_value):
            self.fail(f"header {name} contains control characters", param, ctx)
        if name.lower() in ("host", "connection", "content-length", "transfer-encoding"):
            self.fail(f"header {name} is set by crawlsel and cannot be given", param, ctx)
        try:
            field_value.encode("latin-1")
        except UnicodeEncodeError:
            self.fail(f"header {name} must be Latin-1 text", param, ctx)
        return (name, field_value)


class ResolveType(click.ParamType):
    """``HOST:PORT:ADDR`` as curl's --resolve: connect to ADDR without asking DNS."""

    name = "HOST:PORT:ADDR"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int, str]:
        if isinstance(value, tuple):
            return value
        host, _, rest = str(value).partition(":")
        port, _, addr = rest.partition(":")
        addr = addr.strip("[]")
        try:
            ipaddress.ip_address(addr)
            number = int(port)
        except ValueError:
            self.fail(f"{value!r} is not HOST:PORT:ADDRESS with a numeric port and an IP address", param, ctx)
        if not host or not 0 < number < 65536:
            self.fail(f"{value!r} is not HOST:PORT:ADDRESS", param, ctx)
        return (host.lower(), number, addr)


def common_options(fn: Any) -> Any:
    """Options shared by ``fetch`` and ``get`` (they arrive in ``**common``)."""
    positive = click.FloatRange(min=0, min_open=True)
    options = [
        click.option(
            "-A", "--user-agent", default=DEFAULT_USER_AGENT, show_default=True, help="User-Agent header."
        ),
        click.option(
            "-H",
            "--header",
            "headers",
            multiple=True,
            type=HeaderType(),
            help="Extra request header 'Name: value' (repeatable).",
        ),
        click.option(
            "--connect-timeout",
            type=positive,
            default=10.0,
            show_default=True,
            help="Seconds to wait for a connection and its TLS handshake.",
        ),
        click.option(
            "--read-timeout",
            type=positive,
            default=30.0,
            show_default=True,
            help="Longest silence, in seconds, while a response is pending.",
        ),
        click.option(
            "--pipeline",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Requests in flight per keep-alive connection (HTTP/1.1 pipelining).",
        ),
        click.option(
            "--cacert",
            type=click.Path(exists=True, dir_okay=False),
            help="Also trust the CA certificates in this PEM file.",
        ),
        click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option(
            "--resolve",
            "pinned",
            multiple=True,
            type=ResolveType(),
            help="Connect to ADDR for HOST:PORT without DNS (repeatable).",
        ),
        click.option("-4", "ip_version", flag_value=4, help="Use IPv4 addresses only."),
        click.option("-6", "ip_version", flag_value=6, help="Use IPv6 addresses only."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _config(common: dict[str, Any], **specific: Any) -> Config:
    if common["cacert"]:
        try:
            make_context(cacert=common["cacert"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--cacert") from None
    if common["insecure"]:
        click.echo("crawlsel: warning: --insecure: TLS certificates are not verified", err=True)
    return Config(**common, **specific)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="crawlsel")
def main() -> None:
    """Fetch lists of web pages concurrently, on one thread, with a selector event loop.

    \b
    Examples:
      crawlsel fetch urls.txt                 save every page under crawled_page/
      crawlsel get http://example.com/ | less print one page's body
    """


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("crawled_page"),
    show_default=True,
    help="Folder the pages are saved under.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Open connections in total.",
)
@click.option(
    "--per-host",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Open connections per origin (scheme, host, port).",
)
@click.option(
    "--keep-alive/--no-keep-alive",
    default=True,
    show_default=True,
    help="Reuse connections for further pages of the same origin.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
@click.option(
    "--json", "json_lines", is_flag=True, help="One JSON object per URL on stdout, in completion order."
)
@common_options
def fetch(
    sources: tuple[str, ...],
    output_dir: Path,
    concurrency: int,
    per_host: int,
    keep_alive: bool,
    quiet: bool,
    json_lines: bool,
    **common: Any,
) -> None:
    """Fetch the URLs listed in SOURCE files and save each body under the output folder.

    SOURCE has one URL per line; blank lines and lines starting with # are skipped;
    - reads standard input.  Without SOURCE, urls.txt is read.  Pages are saved as
    OUTPUT/HOST[_PORT]/PATH ("/" as index.html); only 2xx responses are saved.

    \b
    Examples:
      crawlsel fetch urls.txt -o pages
      grep example.org big-list.txt | crawlsel fetch - --json | jq .path
    """
    sources = sources or ("urls.txt",)
    for name in sources:
        if name != "-":
            try:
                check_readable(name)
            except SourceError as exc:
                click.echo(f"crawlsel: error: {exc}", err=True)
                sys.exit(ExitStatus.USAGE)
    config = _config(
        common, output_dir=output_dir, concurrency=concurrency, per_host=per_host, keep_alive=keep_alive
    )
    report = RunReport(json_out=sys.stdout if json_lines else None, quiet=quiet)
    writer = PageWriter(config.output_dir)
    sys.exit(_run(config, read_targets(sources), writer.open, report.on_result, report))


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option(
    "--keep-alive/--no-keep-alive",
    default=False,
    show_default=True,
    help="Send all URLs of one origin over one connection.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Open connections in total.",
)
@common_options
def get(urls: tuple[str, ...], keep_alive: bool, concurrency: int, **common: Any) -> None:
    """Write the bodies of URLs to stdout, bytes exact, in the order given.

    Errors go to stderr, one line per URL.  Without --keep-alive every request is
    sent with "Connection: close" on a connection of its own.

    \b
    Examples:
      crawlsel get http://127.0.0.1:8000/ | grep -i title
      crawlsel get --keep-alive http://h/a.html http://h/b.html > both.html
    """
    config = _config(
        common,
        concurrency=concurrency,
        per_host=1 if keep_alive else concurrency,
        keep_alive=keep_alive,
    )
    output = OrderedOutput(sys.stdout.buffer)
    report = RunReport(quiet=True)

    def on_result(result: FetchResult) -> None:
        report.on_result(result)
        if result.error is not None and not output.closed:
            click.echo(f"crawlsel: {printable(result.url)}: {printable(result.error)}", err=True)
        output.finished(result.index)

    status = _run(config, _argument_targets(urls), output.open, on_result, report)
    if output.closed:
        # The reader went away (| head): as cat, stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(status)


def _argument_targets(urls: tuple[str, ...]) -> list[Target | InvalidLine]:
    records: list[Target | InvalidLine] = []
    for index, url in enumerate(urls):
        try:
            records.append(parse_url(url, index=index))
        except InvalidURL as exc:
            records.append(InvalidLine(url, str(exc), "command line", 0, index))
    return records


def _run(config: Config, records: Any, open_sink: Any, on_result: Any, report: RunReport) -> int:
    loop = EventLoop()
    dispatcher = Dispatcher(loop, config, open_sink, on_result)
    interrupted = False
    try:
        dispatcher.run(records)
    except SourceError as exc:
        report.close(summary=False)
        click.echo(f"crawlsel: error: {exc}", err=True)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        interrupted = True
    finally:
        loop.close()
    report.close(interrupted=interrupted)
    if interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.FAILED if report.failed else ExitStatus.OK


if __name__ == "__main__":  # pragma: no cover
    main()
