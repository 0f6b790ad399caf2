"""Run Debian's dnsmasq as a throw-away authoritative server for tests.

The built-in DnsResponder proves the DNS code against our own idea of DNS;
dnsmasq proves it against a server somebody else wrote. Each instance reads
no config, no /etc/hosts and no resolv.conf, listens on 127.0.0.1 only, and
answers NXDOMAIN for every name it was not given (`--local=/#/`), so a test
sees exactly the records it passed in.
"""

import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.helpers import require_program

_START_SECONDS = 10.0
_PORT_ATTEMPTS = 5


def require_dnsmasq() -> str:
    return require_program("dnsmasq", "dnsmasq-base", "SCB_REQUIRE_DNSMASQ")


class Dnsmasq:
    """dnsmasq serving `records` (name -> IP strings) on 127.0.0.1."""

    def __init__(self, records: dict[str, list[str]], tmp_path: Path):
        self.records = records
        self.tmp_path = Path(tmp_path)
        self.address: tuple[str, int] = ("127.0.0.1", _free_port())
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "Dnsmasq":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        for attempt in range(_PORT_ATTEMPTS):
            if attempt:
                # Another process took the port between probe and bind.
                self.address = ("127.0.0.1", _free_port())
            if self._try_start():
                return
        raise RuntimeError(f"dnsmasq did not start:\n{self._log()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _try_start(self) -> bool:
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._answers():
                return True
        self.stop()
        raise RuntimeError(f"dnsmasq started but never answered:\n{self._log()}")

    def _command(self) -> list[str]:
        host, port = self.address
        # Stay the current user: as root, dnsmasq would switch to nobody,
        # which fails in containers that may not change user or groups.
        user = pwd.getpwuid(os.geteuid()).pw_name
        command = [
            require_dnsmasq(),
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--local=/#/",
            f"--port={port}",
            f"--listen-address={host}",
            "--bind-interfaces",
            f"--pid-file={self.tmp_path / 'dnsmasq.pid'}",
            f"--user={user}",
            "--log-facility=-",
        ]
        for name, ips in self.records.items():
            command += [f"--host-record={name},{ip}" for ip in ips]
        return command

    def _answers(self) -> bool:
        host, port = self.address
        query = dns.message.make_query("ready.invalid", "A")
        try:
            dns.query.udp(query, host, port=port, timeout=0.2)
        except (OSError, dns.exception.DNSException):
            time.sleep(0.05)  # refused before the bind: don't spin
            return False
        return True

    @property
    def _log_path(self) -> Path:
        return self.tmp_path / "dnsmasq.log"

    def _log(self) -> str:
        return self._log_path.read_text(errors="replace")


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                return _free_port()
    return port
