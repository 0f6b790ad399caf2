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
import time
import tomllib
from dataclasses import fields
from pathlib import Path

import tomli_w

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
AGENT_COMMAND = [sys.executable, "-m", "scb_agent.cli", "serve"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of utime and stime


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


def scb(env: dict, *args: str) -> str:
    """Run one `scb-agent` command to completion; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "scb_agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scb-agent {args[0]} failed: {result.stderr}")
    return result.stdout


def dirs_env(root: Path) -> dict:
    return dict(
        os.environ,
        SCB_CONFIG_DIR=str(root / "config"),
        SCB_STATE_DIR=str(root / "state"),
    )


class Lab:
    """`with Lab() as lab:` a running agent for NAME, gone afterwards."""

    def __init__(self, prepare=None) -> None:
        # prepare(lab) runs between `init` and `serve`: to fill the store, say.
        self.prepare = prepare
        self.root = Path(tempfile.mkdtemp(prefix="scb-bench-"))
        self.env = dirs_env(self.root / "ca")
        self.port = free_port()
        self.server = ("127.0.0.1", self.port)
        self.dns: subprocess.Popen | None = None
        self.agent: subprocess.Popen | None = None

    def __enter__(self) -> "Lab":
        try:
            dns_port = self._start_dns()
            self._init_ca(dns_port)
            if self.prepare is not None:
                self.prepare(self)
            self._start_agent()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca" / "state" / "ca"

    @property
    def state_dir(self) -> Path:
        return self.root / "ca" / "state"

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
        scb(
            self.env,
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
        config_file = self.root / "ca" / "config" / "agent.toml"
        config = tomllib.loads(config_file.read_text())
        config["limits"] = {
            f.name: UNLIMITED for f in fields(Limits) if "ban" not in f.name
        }
        config_file.write_text(tomli_w.dumps(config))

    def _start_agent(self) -> None:
        log = open(self.root / "agent.log", "w")
        self.agent = subprocess.Popen(
            AGENT_COMMAND,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_for_port(self.port, self.agent, self.root / "agent.log")

    def host_env(self) -> dict:
        """Client dirs for a host, bootstrapped against the agent."""
        host = self.root / "host"
        env = dirs_env(host)
        fingerprint = scb(self.env, "fingerprint").strip()
        scb(env, "bootstrap", "--server", f"127.0.0.1:{self.port}",
            "--fingerprint", fingerprint)
        return env

    def agent_cpu_seconds(self) -> float:
        return cpu_seconds(self.agent.pid)

    def agent_rss_bytes(self) -> int:
        return rss_bytes(self.agent.pid)

    def close(self) -> None:
        for process in (self.agent, self.dns):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the agent did not start: {log.read_text()}")


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
