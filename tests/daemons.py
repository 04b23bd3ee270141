"""Real proxy daemons from Debian packages (squid, microsocks, danted) on 127.0.0.1 free ports.

Each runs in the foreground from a temporary configuration and is stopped by
its ``close()``; a missing program skips the test with one line (``.ci/run``
installs them).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

START_SECONDS = 20.0  # squid reads its configuration and forks helpers: a second or two


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on: a connect to it is refused."""
    return free_port()


def program(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package}; .ci/run does)")
    return path


class Daemon:
    """A proxy program listening on 127.0.0.1:port, with its temporary folder."""

    def __init__(self, argv: list[str], port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self._log = open(folder / "output.log", "wb")  # noqa: SIM115  (closed in close())
        self._process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=folder)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    output = (folder / "output.log").read_text(errors="replace")
                    self.close()
                    raise RuntimeError(f"{argv[0]} did not start: {output[-2000:]}") from None
                time.sleep(0.05)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _folder() -> Path:
    # Squid drops root for its own user: its files must be readable by it.
    folder = Path(tempfile.mkdtemp(prefix="crawlsel-proxy-"))
    folder.chmod(0o755)
    return folder


def squid(*, users: dict[str, str] | None = None, denied_domain: str = "forbidden.test") -> Daemon:
    """squid as a forwarding proxy and CONNECT tunnel; basic auth when ``users`` are given;
    CONNECT to ``denied_domain`` is refused with 403."""
    binary = program("squid", "squid")
    folder, port = _folder(), free_port()
    lines = [
        f"http_port 127.0.0.1:{port}",
        "pid_filename none",
        "cache_log /dev/null",
        "access_log none",
        "cache deny all",
        "cache_mem 8 MB",
        "coredump_dir none",
        "netdb_filename none",
        "shutdown_lifetime 0 seconds",
        "dns_nameservers 127.0.0.1",  # never a public resolver; names come from /etc/hosts
        "client_persistent_connections on",
        f"acl denied dstdomain {denied_domain}",
        "http_access deny CONNECT denied",
    ]
    if users:
        program("openssl", "openssl")
        if not os.path.exists("/usr/lib/squid/basic_ncsa_auth"):
            pytest.skip("squid's basic_ncsa_auth helper is missing (apt-get install squid)")
        passwd = folder / "passwd"
        entries = []
        for user, password in users.items():
            hashed = subprocess.run(
                ["openssl", "passwd", "-1", password], capture_output=True, text=True, check=True
            ).stdout.strip()
            entries.append(f"{user}:{hashed}\n")
        passwd.write_text("".join(entries))
        passwd.chmod(0o644)
        lines += [
            f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {passwd}",
            "acl users proxy_auth REQUIRED",
            "http_access allow users",
            "http_access deny all",
        ]
    else:
        lines.append("http_access allow all")
    (folder / "squid.conf").write_text("\n".join(lines) + "\n")
    return Daemon([binary, "-N", "-f", str(folder / "squid.conf")], port, folder)


def microsocks(*, user: str | None = None, password: str | None = None) -> Daemon:
    """microsocks, a SOCKS5 server; username/password authentication when given."""
    binary = program("microsocks", "microsocks")
    folder, port = _folder(), free_port()
    argv = [binary, "-i", "127.0.0.1", "-p", str(port)]
    if user is not None:
        argv += ["-u", user, "-P", password or ""]
    return Daemon(argv, port, folder)


def dante() -> Daemon:
    """danted, for SOCKS4 (addresses resolved by the client)."""
    binary = program("danted", "dante-server")
    folder, port = _folder(), free_port()
    config = f"""logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
"""
    (folder / "danted.conf").write_text(config)
    return Daemon([binary, "-f", str(folder / "danted.conf"), "-p", str(folder / "danted.pid")], port, folder)


class SSHDynamic:
    """OpenSSH's SOCKS proxy (``ssh -D``, SOCKS4, 4a and 5), through a private sshd on
    127.0.0.1: a throw-away host key and client key, this user's own login."""

    def __init__(self) -> None:
        sshd, ssh, keygen = (
            program("sshd", "openssh-server"),
            program("ssh", "openssh-client"),
            program("ssh-keygen", "openssh-client"),
        )
        if not os.path.isdir("/run/sshd"):
            try:
                os.makedirs("/run/sshd", mode=0o755)  # sshd's privilege-separation folder
            except OSError:
                pytest.skip("sshd needs /run/sshd (run as root, or install openssh-server)")
        folder = _folder()
        for key in ("host_key", "client_key"):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        ssh_port = free_port()
        (folder / "sshd_config").write_text(
            f"Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\n"
            f"AuthorizedKeysFile {folder}/authorized_keys\nPidFile {folder}/sshd.pid\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
        )
        self._sshd = Daemon([sshd, "-D", "-e", "-f", str(folder / "sshd_config")], ssh_port, folder)
        self.port = free_port()
        client_folder = _folder()
        argv = [
            ssh, "-N", "-D", f"127.0.0.1:{self.port}", "-p", str(ssh_port), "-i", str(folder / "client_key"),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes", f"{getpass.getuser()}@127.0.0.1",
        ]  # fmt: skip
        try:
            self._ssh = Daemon(argv, self.port, client_folder)
        except RuntimeError:
            self._sshd.close()
            raise

    def close(self) -> None:
        self._ssh.close()
        self._sshd.close()
