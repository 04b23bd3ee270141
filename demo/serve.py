"""Serve the bundled demo site on 127.0.0.1 over HTTP/1.1 with keep-alive.

    python demo/serve.py [PORT]          serve until Ctrl-C
    python demo/serve.py --run [PORT]    serve, run `crawlsel fetch urls.txt`, stop

The second form is what `make run` does.
"""

from __future__ import annotations

import functools
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
    command = [sys.executable, "-m", "crawlsel", "fetch", "urls.txt"]
    print("demo: $ crawlsel fetch urls.txt", file=sys.stderr)
    status = subprocess.call(command)
    server.shutdown()
    saved = sorted(p for p in Path("crawled_page").rglob("*") if p.is_file())
    if saved:
        print("demo: saved files:", file=sys.stderr)
        for path in saved:
            print(f"  {path}  ({path.stat().st_size:,} bytes)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
