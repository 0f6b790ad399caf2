"""The parts `scb-agent demo` runs on loopback, and how they start and stop.

A DNS responder in a thread of the demo's own process, a real `scb-agent
serve` child process, and `scb-agent` commands run to completion for the CA
and for one host, each side with its own config and state dirs. Nothing
outside the demo's directory is read or written: the environment the
commands get points SCB_CONFIG_DIR and SCB_STATE_DIR into it.
"""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scb_core.errors import ScbError

from .dns_responder import DnsResponder

AGENT_START_SECONDS = 20
COMMAND_SECONDS = 120


# Below Linux's ephemeral range (ip_local_port_range, 32768-60999 by default).
# A port from that range can be handed to any outgoing connection on the
# machine between our probe and the real bind; these are taken only by binds.
_PICKED_PORTS = range(20000, 32768)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` and on every address, for a later bind."""
    wildcard = "::" if ":" in host else "0.0.0.0"
    for _ in range(200):
        port = random.choice(_PICKED_PORTS)
        if _bindable(wildcard, port) and _bindable(host, port):
            return port
    raise ScbError("internal", f"no free TCP port on {host} in {_PICKED_PORTS}")


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_privileged_port(host: str, preferred: int) -> int | None:
    """A port below 1024 free on `host`, `preferred` if it can be; None when
    this process may not listen below 1024 (not root, no CAP_NET_BIND_SERVICE).
    """
    for port in (preferred, *range(1023, 511, -1)):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except PermissionError:
                return None
            except OSError:
                continue
        return port
    raise ScbError("internal", f"no free port below 1024 on {host}")


class Side:
    """One machine's worth of dirs (the CA host's or a host's) in the demo."""

    def __init__(self, root: Path):
        self.config_dir = root / "config"
        self.state_dir = root / "state"
        self.env = dict(
            os.environ,
            SCB_CONFIG_DIR=str(self.config_dir),
            SCB_STATE_DIR=str(self.state_dir),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """`scb-agent ARGS` to completion; a failure raises with its stderr."""
        result = subprocess.run(
            [sys.executable, "-m", "scb_agent.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise ScbError("internal", f"scb-agent {args[0]} failed: {detail}")
        return result


class DnsThread:
    """The DNS responder on its own event loop, so commands can block meanwhile."""

    def __init__(self, records: dict[str, list[str]]):
        self.responder = DnsResponder(records)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def records(self) -> dict[str, list[str]]:
        """The responder's records, which stay mutable while it runs."""
        return self.responder.records

    @property
    def address(self) -> str:
        host, port = self.responder.address
        return f"{host}:{port}"

    def start(self) -> "DnsThread":
        self._thread.start()
        self._call(self.responder.start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.responder.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)


class AgentProcess:
    """`scb-agent serve` for one side, its output in `log`.

    The demo, the tests' lab and the benchmarks all start the agent this way.
    """

    def __init__(self, side: Side, port: int, log: Path):
        self.side = side
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = AGENT_START_SECONDS) -> None:
        """Start it and wait until it serves JASC/1 and its admin socket."""
        admin_socket = self.side.state_dir / "admin.sock"
        admin_socket.unlink(missing_ok=True)  # left behind by a killed agent
        with open(self.log, "a") as log:
            # A session of its own: the demo, not the terminal's Ctrl-C, stops
            # it, after the demo has finished what it was doing.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scb_agent.cli", "serve"],
                env=self.side.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ScbError("internal", f"the agent exited; see {self.log}")
            if admin_socket.exists() and accepts(self.port):
                return
            time.sleep(0.05)
        raise ScbError("internal", f"the agent did not start; see {self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM lets it finish and commit; SIGKILL if it hangs.

        The exit status, or None when it never started.
        """
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
