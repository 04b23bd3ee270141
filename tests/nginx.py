"""A real nginx on 127.0.0.1 for the tests that need a server nobody here wrote.

It serves one folder with its own temporary configuration, logs ``URI status
bytes-sent`` per request, and is skipped (with the reason) when nginx is absent:
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    def __init__(self, root: Path, work: Path) -> None:
        if NGINX is None:
            pytest.skip("nginx is not installed (.ci/run installs it: apt-get install nginx)")
        self.root, self.work, self.port = root, work, free_port()
        self.log = work / "access.log"
        conf = work / "nginx.conf"
        # As root, the workers would run as nobody, who cannot read pytest's private folders.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        w, p, r = work, self.port, root
        conf.write_text(
            f"{user}worker_processes 1; daemon off; error_log {w}/error.log; pid {w}/nginx.pid;\n"
            "events { worker_connections 256; }\n"
            f"http {{ log_format sent '$request_uri $status $bytes_sent'; access_log {w}/access.log sent;\n"
            f"  client_body_temp_path {w}; proxy_temp_path {w}; fastcgi_temp_path {w};\n"
            f"  uwsgi_temp_path {w}; scgi_temp_path {w}; types {{ text/html html; text/css css; }}\n"
            f"  server {{ listen 127.0.0.1:{p}; root {r}; }} }}\n"
        )
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"nginx did not start: {(work / 'error.log').read_text()}")
                time.sleep(0.05)
        pytest.fail("nginx did not start listening")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[tuple[str, int, int]]:
        """(URI, status, bytes sent) of every request logged so far."""
        time.sleep(0.05)  # nginx writes its log line after the response
        lines = self.log.read_text().split("\n") if self.log.exists() else []
        return [(u, int(s), int(b)) for u, s, b in (line.split(" ") for line in lines if line)]

    def clear(self) -> None:
        self.log.write_text("")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
