"""The bench's servers on 127.0.0.1: nginx for the static corpus, and a server that
waits 100 ms before each answer (nginx with the echo module's ``echo_sleep``, else
the Python latency_server.py), each able to say how much CPU it used.

The servers share the 2 cores with the clients, so every table gives the server's own
CPU time per run (from its processes' /proc times: nginx's workers, or the Python
server), and a reader sees what part of the machine the client had.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")  # Debian's libnginx-mod-http-echo
_TICKS = os.sysconf("SC_CLK_TCK")

_NGINX_HTTP = """worker_processes 1;
daemon off;
error_log {work}/{name}-error.log;
pid {work}/{name}.pid;
worker_rlimit_nofile 65536;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  sendfile on;
  server {{ {listens} root {root}; {locations} }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def _apt_install(package: str) -> None:
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"bench: installing {package} (apt-get) ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, capture_output=True)


def ensure_nginx() -> str | None:
    def found() -> str | None:
        return shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx") or None

    if not found():
        _apt_install("nginx-light")
    return found()


def ensure_echo_module() -> bool:
    if not ECHO_MODULE.exists():
        _apt_install("libnginx-mod-http-echo")
    return ECHO_MODULE.exists()


def time_wait_sockets() -> int:
    """TCP sockets of this machine in TIME_WAIT (state 06 of /proc/net/tcp and tcp6)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as table:
                next(table, None)
                count += sum(1 for line in table if line.split(None, 4)[3] == "06")
        except OSError:
            continue
    return count


def wait_for_time_wait(below: int = 1000, longest: float = 70.0) -> float:
    """Wait until the TIME_WAIT sockets of earlier runs are gone (Linux keeps them 60 s);
    the seconds waited.  10,000 of them made the next run's 10,000 connects cost three
    times the system CPU (0.46 -> 1.31 s, 2026-12-06): the kernel searches the ports."""
    started = time.monotonic()
    while time_wait_sockets() >= below and time.monotonic() - started < longest:
        time.sleep(1.0)
    return time.monotonic() - started


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


class _Server:
    proc: subprocess.Popen
    kind: str

    def pids(self) -> list[int]:
        """The processes that do the serving: nginx's workers (not its master), or the server."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        return [int(pid) for pid in children] or [self.proc.pid]

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def _nginx(nginx: str, work: Path, name: str, text: str) -> subprocess.Popen:
    conf = work / f"{name}.conf"
    conf.write_text(text)
    return subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)


class StaticServer(_Server):
    def __init__(self, root: Path, work: Path, origins: int = 4) -> None:
        self.port = free_port()
        # The same site on more ports: the "small4" scenario's 4 origins (fetch --workers
        # split runs by host until 2026-12-06; now by file name, so small4 shows the
        # same split as small with the connections to 4 origins).
        self.ports = [self.port] + [free_port() for _ in range(origins - 1)]
        listens = " ".join(f"listen 127.0.0.1:{port} backlog=16384;" for port in self.ports)
        nginx = ensure_nginx()
        if nginx:
            self.kind = "nginx"
            text = _NGINX_HTTP.format(work=work, name="nginx", listens=listens, root=root, locations="")
            self.proc = _nginx(nginx, work, "nginx", text)
        else:
            print(
                "bench: WARNING: nginx is not installed (apt-get install nginx-light); using a Python "
                "server, which is then the bottleneck: the numbers compare the server, not the clients.",
                file=sys.stderr,
            )
            self.kind = "python http.server"
            self.ports = [self.port]  # one port: "small4" is then one origin
            self.proc = subprocess.Popen([PY, str(HERE / "static_server.py"), str(self.port), str(root)])
        for port in self.ports:
            wait_for_port(port)


class LatencyServer(_Server):
    """Every path answers ``body`` after ``delay`` seconds: nginx's ``echo_sleep`` (a timer
    in nginx's event loop), then an internal redirect to the body's file."""

    def __init__(self, delay: float, body_bytes: int, work: Path) -> None:
        self.port = free_port()
        self.body = (b"<p>latency</p>" * (body_bytes // 14 + 1))[:body_bytes]
        nginx = ensure_nginx()
        if nginx and ensure_echo_module():
            self.kind = f"nginx with echo_sleep, {delay * 1000:.0f} ms delay"
            folder = work / "latency-site"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "latency.body").write_bytes(self.body)
            locations = (
                f"location / {{ echo_sleep {delay}; echo_exec /latency.body; }} "
                f"location = /latency.body {{ internal; default_type text/html; }}"
            )
            listen = f"listen 127.0.0.1:{self.port} backlog=16384;"
            text = _NGINX_HTTP.format(
                work=work, name="nginx-latency", listens=listen, root=folder, locations=locations
            )
            self.proc = _nginx(nginx, work, "nginx-latency", f"load_module {ECHO_MODULE};\n{text}")
        else:
            loop = "uvloop" if importable("uvloop") else "the standard loop"
            self.kind = f"asyncio on {loop} (nginx's echo module missing), {delay * 1000:.0f} ms delay"
            self.proc = subprocess.Popen(
                [PY, str(HERE / "latency_server.py"), str(self.port), str(delay), str(body_bytes)]
            )
        wait_for_port(self.port)


def importable(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0
