"""Serve the bundled demo site on 127.0.0.1 over HTTP/1.1 with keep-alive.

    python demo/serve.py [PORT]          serve until Ctrl-C
    python demo/serve.py --run [PORT]    serve, run `crawlsel fetch urls.txt`, then
                                         `crawlsel crawl` from the front page, stop

The second form is what `make run` does.
"""

from __future__ import annotations

import functools
import json
import http.server
import subprocess
import sys
import threading
from pathlib import Path

SITE = Path(__file__).resolve().parent / "site"
DEFAULT_PORT = 8765  # the port urls.txt names


class DemoHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the standard handler defaults to 1.0

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(DemoHandler, directory=str(SITE))
    # The standard backlog of 5 drops SYNs when a crawler opens 8 connections at
    # once, and a dropped SYN costs a 1 s retransmission.
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    run = "--run" in argv
    args = [a for a in argv if a != "--run"]
    port = int(args[0]) if args else DEFAULT_PORT
    try:
        server = serve(port)
    except OSError as exc:
        print(f"demo: cannot listen on 127.0.0.1:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(
        f"demo: serving {SITE.relative_to(Path.cwd()) if SITE.is_relative_to(Path.cwd()) else SITE} "
        f"on http://127.0.0.1:{port}/",
        file=sys.stderr,
    )
    if not run:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            return 0
    status = _show("fetch", ["fetch", "urls.txt"], Path("crawled_page"))
    crawl = ["crawl", f"http://127.0.0.1:{port}/", "-o", "crawled_site", "--json"]
    status = _show("crawl", crawl, Path("crawled_site"), records=True) or status
    server.shutdown()
    return status


def _show(what: str, args: list[str], folder: Path, *, records: bool = False) -> int:
    """Run one crawlsel command as a user would, then list what it saved."""
    print(f"demo: $ crawlsel {' '.join(args)}", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "crawlsel", *args], stdout=subprocess.PIPE, text=True)
    if records:  # what the crawl found and how: one line per JSON record
        for line in done.stdout.splitlines():
            record = json.loads(line)
            how = record["skip_reason"] and f"skipped ({record['skip_reason']})" or record["status"]
            print(f"  {record['via']:<9} depth {record['depth']}  {record['url']}  -> {how}", file=sys.stderr)
    saved = sorted(p for p in folder.rglob("*") if p.is_file())
    if saved:
        print(f"demo: {what} saved:", file=sys.stderr)
        for path in saved:
            print(f"  {path}  ({path.stat().st_size:,} bytes)", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
