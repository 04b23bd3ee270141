"""Fallback static server (HTTP/1.1, keep-alive, threads) when nginx is not installed.

python static_server.py PORT ROOT
"""

import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    port, root = int(sys.argv[1]), sys.argv[2]
    http.server.ThreadingHTTPServer.request_queue_size = 1024  # the default 5 drops SYNs
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root))
    server.daemon_threads = True
    server.serve_forever()
