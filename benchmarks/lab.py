"""What every benchmark stands on: a CA, its agent process and a DNS process.

Everything lives in a temporary directory and talks over loopback. The agent
is a real `scb-agent serve` child process, started the way an operator starts
it, so its CPU time and memory can be read from /proc without counting the
clients'. Its rate limits are raised out of the way: the benchmarks measure
issuance, not the limiter refusing a flood from one address.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import fields
from pathlib import Path

import tomli_w

from scb_agent.demo_lab import AgentProcess, Side, free_port
from scb_core.config import Limits

HERE = Path(__file__).resolve().parent
NAME = "bench.home.arpa"
HOST_ADDRESS = "127.0.0.2"  # where NAME points: the clients' challenge address
# Below tests/lab.py's picks (20000 up), so a test run beside a benchmark
# does not take a port out from under a client.
CHALLENGE_PORTS_START = 10000
EPHEMERAL_START = int(
    Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
)
UNLIMITED = 1_000_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of utime and stime


def challenge_ports(count: int) -> list[int]:
    """`count` distinct ports on HOST_ADDRESS for the clients' responders.

    Taken below the kernel's ephemeral range, so that no outgoing connection
    can occupy one between two issuances, and tried by binding each.
    """
    ports = []
    for port in range(CHALLENGE_PORTS_START, EPHEMERAL_START):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST_ADDRESS, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports on {HOST_ADDRESS}")


class Lab:
    """`with Lab() as lab:` a running agent for NAME, gone afterwards."""

    def __init__(self, prepare=None) -> None:
        # prepare(lab) runs between `init` and `serve`: to fill the store, say.
        self.prepare = prepare
        self.root = Path(tempfile.mkdtemp(prefix="scb-bench-"))
        self.ca = Side(self.root / "ca")
        self.port = free_port()
        self.server = ("127.0.0.1", self.port)
        self.dns: subprocess.Popen | None = None
        self.agent = AgentProcess(self.ca, self.port, self.root / "agent.log")

    def __enter__(self) -> "Lab":
        try:
            dns_port = self._start_dns()
            self._init_ca(dns_port)
            if self.prepare is not None:
                self.prepare(self)
            self.agent.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def ca_dir(self) -> Path:
        return self.ca.state_dir / "ca"

    @property
    def state_dir(self) -> Path:
        return self.ca.state_dir

    @property
    def root_pem(self) -> str:
        return (self.ca_dir / "root.pem").read_text()

    def _start_dns(self) -> int:
        self.dns = subprocess.Popen(
            [sys.executable, str(HERE / "dns_server.py"), f"{NAME}={HOST_ADDRESS}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        return int(self.dns.stdout.readline())

    def _init_ca(self, dns_port: int) -> None:
        self.ca.run(
            "init",
            "--allow-domain",
            "home.arpa",
            "--allow-network",
            "127.0.0.0/8",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--server-name",
            "127.0.0.1",
            "--resolver",
            f"127.0.0.1:{dns_port}",
            "--challenge-ports",
            "1024-65535",
        )
        config_file = self.ca.config_dir / "agent.toml"
        config = tomllib.loads(config_file.read_text())
        config["limits"] = {
            f.name: UNLIMITED for f in fields(Limits) if "ban" not in f.name
        }
        config_file.write_text(tomli_w.dumps(config))

    def host_env(self) -> dict:
        """Client dirs for a host, bootstrapped against the agent."""
        host = Side(self.root / "host")
        fingerprint = self.ca.run("fingerprint").stdout.strip()
        host.run(
            "bootstrap", "--server", f"127.0.0.1:{self.port}",
            "--fingerprint", fingerprint,
        )
        return host.env

    def agent_cpu_seconds(self) -> float:
        return cpu_seconds(self.agent.pid)

    def agent_rss_bytes(self) -> int:
        return rss_bytes(self.agent.pid)

    def close(self) -> None:
        self.agent.stop()
        if self.dns is not None and self.dns.poll() is None:
            self.dns.terminate()
            self.dns.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of one process, all its threads, so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
