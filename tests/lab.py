"""A lab on loopback for end-to-end tests: DNS, a real agent process, hosts.

The agent runs as a child process (`python -m scb_agent.cli serve`) with its
own temp config and state dirs, exactly as an operator would start it; hosts
run the real `scb-agent` commands against it.
"""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from scb_agent.admin_client import AdminClient
from scb_agent.demo_lab import (
    AgentProcess,
    DnsThread,  # noqa: F401  (the tests take it from here)
    Side,
    free_port,
)
from scb_core.errors import ScbError


def run_scb(env: dict, *args: str, timeout: float = 60, check: bool = False):
    result = subprocess.run(
        [sys.executable, "-m", "scb_agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def dirs_env(root: Path) -> dict:
    return Side(root).env


LAB_LIMITS = {
    "requests_per_address_per_hour": 100_000,
    "failures_per_address_per_hour": 100_000,
    "failures_per_name_per_hour": 100_000,
    "certificates_per_name_set_per_week": 100_000,
}


class Agent:
    """A real `scb-agent serve` child process with its own CA."""

    def __init__(self, root: Path, resolvers: list[str], *init_args: str):
        self.root = root
        side = Side(root)
        self.env = side.env  # what tests change here, the agent starts with
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = root / "agent.log"
        self.serve = AgentProcess(side, self.port, self.log)
        resolver_args = [a for r in resolvers for a in ("--resolver", r)]
        if "--challenge-ports" not in init_args:
            # Tests are not always root: let hosts answer on unprivileged ports.
            init_args = ("--challenge-ports", "1-65000", *init_args)
        run_scb(
            self.env,
            "init",
            "--allow-domain",
            "home.arpa",
            "--allow-network",
            "127.0.0.0/8",
            "--listen",
            self.address,
            "--server-name",
            "127.0.0.1",
            *resolver_args,
            *init_args,
            check=True,
        )
        self.fingerprint = run_scb(self.env, "fingerprint", check=True).stdout.strip()
        # One loopback address stands for every host here, so the shipped
        # limits would ban it within a module; tests of the limits set theirs.
        self.configure("limits", **LAB_LIMITS)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config_file(self) -> Path:
        return self.root / "config" / "agent.toml"

    @property
    def admin_socket(self) -> Path:
        return self.state_dir / "admin.sock"

    def configure(self, section: str | None = None, **values) -> None:
        """Change agent.toml (for the next start): top level or a [section]."""
        import tomllib

        import tomli_w

        config = tomllib.loads(self.config_file.read_text())
        target = config.setdefault(section, {}) if section else config
        target.update(values)
        self.config_file.write_text(tomli_w.dumps(config))

    @property
    def process(self) -> subprocess.Popen | None:
        return self.serve.process

    def start(self, timeout: float = 15) -> "Agent":
        try:
            self.serve.start(timeout)
        except ScbError as exc:
            raise RuntimeError(f"{exc.message}:\n{self.log.read_text()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        return self.serve.stop(sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def admin(self, *args: str, check: bool = True):
        return run_scb(self.env, "admin", *args, check=check)

    def call(self, name: str, **args):
        """One admin-socket call, from the test process."""

        async def go():
            async with AdminClient(self.admin_socket) as client:
                return await client.call(name, **args)

        return asyncio.run(go())


class Host:
    """A host's client dirs, bootstrapped against an agent."""

    def __init__(self, root: Path, agent: Agent):
        self.root = root
        self.env = dirs_env(root)
        self.agent = agent
        run_scb(
            self.env,
            "bootstrap",
            "--server",
            agent.address,
            "--fingerprint",
            agent.fingerprint,
            check=True,
        )

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    def live(self, name: str) -> Path:
        return self.config_dir / "live" / name

    def request(self, *args: str, port: int | None = None, timeout: float = 120):
        port = port or free_port()
        return run_scb(
            self.env, "request", *args, "--challenge-port", str(port), timeout=timeout
        )

