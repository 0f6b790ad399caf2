"""`scb-agent demo`: the whole flow on loopback, in one command.

A throw-away CA for demo.home.arpa, its agent as a real `scb-agent serve`
process, a DNS responder answering for the demo names, and a host that
bootstraps and requests a certificate, all in one temporary directory. Each
stage prints what it did; the files stay behind for a look. With `--keep` the
lab runs on until Ctrl-C, and the demo prints the commands to try against it.

The agent policy is the design's, except for the challenge port: when it may
listen below 1024 the host answers there as usual; otherwise the demo allows
the one unprivileged port its host uses, since a demo needs no root.
"""

import logging
import shlex
import signal
import tempfile
import threading
from pathlib import Path

from cryptography import x509

from scb_core.errors import ConfigError, ScbError
from scb_core.keys import load_private_key
from scb_core.store import format_serial

from .cli import DEFAULT_CHALLENGE_PORT
from .client import verify_chain
from .demo_lab import (
    AgentProcess,
    DnsThread,
    Side,
    free_port,
    free_privileged_port,
)

DOMAIN = "demo.home.arpa"
NAME = f"www.{DOMAIN}"
NEXT_NAME = f"api.{DOMAIN}"
# Not 127.0.0.1: the agent listens there, and policy refuses its own address.
HOST_ADDRESS = "127.0.0.2"
STAGES = 6


class Demo:
    def __init__(self, root: Path):
        self.root = root
        self.ca = Side(root / "ca")
        self.host = Side(root / "host")
        self.dns = DnsThread({NAME: [HOST_ADDRESS], NEXT_NAME: [HOST_ADDRESS]})
        self.agent_port = free_port("127.0.0.1")
        self.server = f"127.0.0.1:{self.agent_port}"
        self.agent = AgentProcess(self.ca, self.agent_port, root / "agent.log")
        port = free_privileged_port(HOST_ADDRESS, DEFAULT_CHALLENGE_PORT)
        if port is not None:
            self.challenge_port = port
            self.challenge_ports = "1-1023"  # the design's default
        else:
            # Only this one unprivileged port: the demo's host is not root.
            self.challenge_port = free_port(HOST_ADDRESS)
            self.challenge_ports = f"{self.challenge_port}-{self.challenge_port}"

    def run(self) -> None:
        self.dns.start()
        _stage(
            1,
            f"DNS responder on {self.dns.address}: "
            f"{NAME} and {NEXT_NAME} -> {HOST_ADDRESS}",
        )

        fingerprint = self._create_ca()
        _stage(2, f"CA created: root, issuing intermediate, allowed domain {DOMAIN}")
        _detail(f"root SHA-256 {fingerprint}")
        _detail(
            f"challenge ports {self.challenge_ports}, "
            f"networks 127.0.0.0/8, resolver {self.dns.address}"
        )

        self.agent.start()
        _stage(
            3, f"agent: scb-agent serve, pid {self.agent.pid}, JASC/1 on {self.server}"
        )

        self.host.run(
            "bootstrap", "--server", self.server, "--fingerprint", fingerprint
        )
        _stage(
            4,
            f"host bootstrapped: root pinned by fingerprint in "
            f"{self.host.config_dir / 'root.pem'}",
        )

        _stage(
            5,
            f"host requests {NAME}, answering on {HOST_ADDRESS}:{self.challenge_port}",
        )
        for line in self.host.run(*self.request_args(NAME)).stdout.splitlines():
            _detail(line.strip())

        _stage(6, "checked: " + self._verify())
        listing = self.ca.run("admin", "certificates").stdout
        for line in listing.splitlines():
            _detail(line)
        self._print_files()

    def _create_ca(self) -> str:
        self.ca.run(
            "init",
            "--name", "SCB demo CA",
            "--allow-domain", DOMAIN,
            "--allow-network", "127.0.0.0/8",
            "--listen", self.server,
            "--server-name", "127.0.0.1",
            "--resolver", self.dns.address,
            "--challenge-ports", self.challenge_ports,
        )  # fmt: skip
        return self.ca.run("fingerprint").stdout.strip()

    def request_args(self, name: str) -> list[str]:
        return [
            "request", name,
            "--server", self.server,
            "--challenge-port", str(self.challenge_port),
            "--challenge-bind", HOST_ADDRESS,
        ]  # fmt: skip

    def live(self, name: str) -> Path:
        return self.host.config_dir / "live" / name

    def _verify(self) -> str:
        """What `request` verified, once more from the files on disk."""
        live = self.live(NAME)
        root = x509.load_pem_x509_certificate(
            (live.parent.parent / "root.pem").read_bytes()
        )
        key = load_private_key((live / "privkey.pem").read_bytes())
        chain = verify_chain(
            (live / "fullchain.pem").read_text(), root, [NAME], key.public_key()
        )
        leaf = chain[0]
        return (
            f"fullchain.pem verifies against the pinned root for {NAME}; "
            f"serial {format_serial(leaf.serial_number)}, issued by "
            f"{leaf.issuer.rfc4514_string()}"
        )

    def _print_files(self) -> None:
        live = self.live(NAME)
        print()
        print(f"Files (all under {self.root}):")
        _file("CA root", self.ca.state_dir / "ca" / "root.pem")
        _file("agent config", self.ca.config_dir / "agent.toml")
        _file("agent store", self.ca.state_dir / "scb.db")
        _file("agent log", self.agent.log)
        for part in ("fullchain", "privkey", "cert", "chain"):
            _file(part, live / f"{part}.pem")
        _file("renewal", self.host.config_dir / "renewal" / f"{NAME}.toml")

    def print_next_steps(self) -> None:
        ca, host = _env_prefix(self.ca), _env_prefix(self.host)
        request = shlex.join(["scb-agent", *self.request_args(NEXT_NAME)])
        print()
        print("The lab keeps running. In another shell, try:")
        print(f"  {ca} scb-console")
        print(f"  {ca} scb-agent admin certificates")
        print(f"  {host} {request}")
        print("Press Ctrl-C to stop it.", flush=True)

    def close(self) -> None:
        self.agent.stop()
        self.dns.stop()


def run_demo(args, paths) -> int:
    if not args.verbose:
        # The stages say what happened; the responder's own line is noise here.
        logging.getLogger("scb_agent.dns_responder").setLevel(logging.WARNING)
    root = _demo_dir(args.dir)
    print(f"SCB demo in {root}", flush=True)
    demo = Demo(root)
    try:
        demo.run()
        if args.keep:
            demo.print_next_steps()
            _wait_for_interrupt()
    finally:
        demo.close()
    print(
        f"Lab stopped. The files stay in {root}; remove them with: "
        f"rm -r {shlex.quote(str(root))}",
        flush=True,
    )
    return 0


def _demo_dir(wanted: str | None) -> Path:
    if wanted is None:
        return Path(tempfile.mkdtemp(prefix="scb-demo-"))

    root = Path(wanted).resolve()
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"--dir {wanted}: not empty; the demo needs a fresh one")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _wait_for_interrupt() -> None:
    """Until SIGINT or SIGTERM; either ends the demo cleanly with status 0."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    print()


def _env_prefix(side: Side) -> str:
    return (
        f"SCB_CONFIG_DIR={shlex.quote(str(side.config_dir))} "
        f"SCB_STATE_DIR={shlex.quote(str(side.state_dir))}"
    )


def _stage(number: int, text: str) -> None:
    print(f"[{number}/{STAGES}] {text}", flush=True)


def _detail(text: str) -> None:
    print(f"      {text}", flush=True)


def _file(what: str, path: Path) -> None:
    if not path.exists():
        raise ScbError("internal", f"the demo expected {path}, and it is missing")
    print(f"  {what + ':':<14}{path}", flush=True)
