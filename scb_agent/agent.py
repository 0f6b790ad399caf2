"""What one running agent holds: config, CA, store writer, event feed."""

import asyncio
import ipaddress
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from scb_core.authority_files import (
    load_authority,
    pem_of,
    read_passphrase,
    refuse_exposed_keys,
)
from scb_core.ca import Authority
from scb_core.config import AgentConfig, load_agent_config, parse_host_port
from scb_core.dns import parse_resolver
from scb_core.errors import ConfigError
from scb_core.paths import Paths
from scb_core.policy import Policy

from .events import EventBus
from .guard import Guard
from .store_writer import StoreWriter

logger = logging.getLogger(__name__)


@dataclass
class Agent:
    paths: Paths
    config: AgentConfig
    authority: Authority
    policy: Policy
    writer: StoreWriter
    events: EventBus = field(default_factory=EventBus)
    approvals: dict = field(default_factory=dict)  # request id -> Future
    # One CRL signed and written at a time, so the newest lands last.
    crl_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started_at: float = field(default_factory=time.time)
    guard: Guard = field(init=False)
    # Derived once, not per request: neither config nor authority changes
    # while the agent runs.
    root_pem: str = field(init=False, repr=False)
    chain_pem: str = field(init=False, repr=False)
    resolvers: list[tuple[str, int]] = field(init=False)

    def __post_init__(self):
        self.guard = Guard(self.config.limits, self.writer, self.events)
        self.root_pem = pem_of(self.authority.root).decode()
        self.chain_pem = pem_of(*self.authority.chain).decode()
        self.resolvers = [parse_resolver(r) for r in self.config.resolvers]

    def tls_context(self) -> ssl.SSLContext:
        ca_dir = self.paths.ca_dir
        return server_tls_context(ca_dir / "server.pem", ca_dir / "server.key")


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """JASC/1's server side: TLS 1.3 only (the benchmarks' baseline uses it too)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Hosts open one connection per request and never resume a session:
    # TLS 1.3's default session tickets would be wasted work and a write.
    context.num_tickets = 0
    context.load_cert_chain(cert, key)
    return context


def open_agent(paths: Paths) -> Agent:
    config = load_agent_config(paths.agent_config)
    refuse_exposed_keys(paths.ca_dir)
    try:
        passphrase = read_passphrase(config.passphrase_file)
        authority = load_authority(paths.ca_dir, passphrase)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the CA from {paths.ca_dir}: {exc}") from exc

    listen_host, _ = parse_host_port(config.listen)
    policy = config.policy(own_addresses(listen_host))
    writer = StoreWriter(paths.store)
    return Agent(paths, config, authority, policy, writer)


def own_addresses(listen_host: str) -> frozenset:
    """The addresses challenges must never target: the agent's own."""
    try:
        address = ipaddress.ip_address(listen_host)
    except ValueError:
        address = None

    if address is not None and not address.is_unspecified:
        return frozenset({address})
    return frozenset(local_addresses())


def local_addresses() -> set:
    """Every address of this host, from the kernel's tables (Linux)."""
    found = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
    found |= _ipv4_local(Path("/proc/net/fib_trie"))
    found |= _ipv6_local(Path("/proc/net/if_inet6"))
    return found


def _ipv4_local(path: Path) -> set:
    addresses, last = set(), None
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return addresses
    for line in lines:
        words = line.split()
        if words[:1] == ["|--"]:
            last = words[1]
        elif "/32 host LOCAL" in line and last:
            addresses.add(ipaddress.ip_address(last))
    return addresses


def _ipv6_local(path: Path) -> set:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return set()
    return {
        ipaddress.ip_address(int(line.split()[0], 16).to_bytes(16, "big"))
        for line in lines
        if line.strip()
    }
