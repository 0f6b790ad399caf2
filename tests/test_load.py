"""Load: idle and slow connections by the thousand, good clients still served.

The connection caps (limits.connections_per_address, .connections_total)
count connections that finished TLS; the idle crowd therefore comes from many
loopback addresses, four each, and the total is set above the crowd. The caps
themselves are checked on a small agent of their own.
"""

import concurrent.futures
import resource
import socket
import ssl
import time

import pytest

from tests import hostile
from tests.hostile import Wire
from tests.lab import Agent, DnsThread, run_scb

IDLE_TLS = 500  # finished the handshake, then said nothing
IDLE_TCP = 500  # connected, never sent a ClientHello
CLIENTS = 32
REQUESTS_EACH = 3
PER_ADDRESS = 4
MIB = 1024


def crowd_address(i: int) -> str:
    """Idle connection i's source: 127.0.1.x, 127.0.2.x, ... four to each."""
    slot = i // PER_ADDRESS
    return f"127.0.{1 + slot // 250}.{1 + slot % 250}"


def set_open_file_limit(soft: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))


@pytest.fixture
def file_limit():
    """Restore the test process's open file limit afterwards."""
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def open_idle_tls(agent: Agent, count: int) -> list[ssl.SSLSocket]:
    root_pem = agent.state_dir / "ca" / "root.pem"
    return [Wire(agent.port, root_pem, crowd_address(i)).sock for i in range(count)]


def open_idle_tcp(agent: Agent, count: int) -> list[socket.socket]:
    return [
        socket.create_connection(
            ("127.0.0.1", agent.port), source_address=("127.0.9.1", 0)
        )
        for _ in range(count)
    ]


def client_work(agent: Agent, dns: DnsThread, number: int) -> list[dict]:
    """One client: its own source and challenge address, several requests."""
    root_pem = agent.state_dir / "ca" / "root.pem"
    source, peer = f"127.0.20.{number + 1}", f"127.0.30.{number + 1}"
    results = []
    for attempt in range(REQUESTS_EACH):
        name = f"load-{number}-{attempt}.home.arpa"
        dns.records[name] = [peer]
        last, _ = hostile.issue(agent.port, root_pem, name, peer, source)
        results.append(last)
    return results


@pytest.mark.slow
def test_a_thousand_idle_connections_do_not_stop_32_clients(tmp_path, file_limit):
    dns = DnsThread({}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.configure("timeouts", handshake=600, message=600, request=300)
    agent.configure(
        "limits",
        connections_per_address=PER_ADDRESS,
        connections_total=IDLE_TLS + CLIENTS + 50,
    )
    # The agent starts with the common soft limit of 1024 open files and
    # must raise its own to hold the crowd.
    set_open_file_limit(1024)
    agent.start()
    set_open_file_limit(IDLE_TLS + IDLE_TCP + 1000)
    try:
        idle = []
        pid = agent.process.pid
        warm, _ = hostile.issue(
            agent.port,
            agent.state_dir / "ca" / "root.pem",
            _named(dns, "warm.home.arpa"),
        )
        assert warm["type"] == "certificate", warm
        before = hostile.memory_kib(pid)
        files_before = hostile.open_files(pid)

        idle += open_idle_tls(agent, IDLE_TLS)
        idle += open_idle_tcp(agent, IDLE_TCP)
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client_work, agent, dns, n) for n in range(CLIENTS)]
            results = [r for f in futures for r in f.result()]
        files_held = hostile.open_files(pid)
        memory = hostile.memory_kib(pid)

        assert [r["type"] for r in results] == ["certificate"] * len(results), [
            r for r in results if r["type"] != "certificate"
        ][:3]
        assert len(results) == CLIENTS * REQUESTS_EACH
        # Every idle connection is one file, and nothing else piles up.
        assert files_held <= files_before + IDLE_TLS + IDLE_TCP + 2 * CLIENTS
        assert memory["VmRSS"] < before["VmRSS"] + 256 * MIB, (before, memory)
        # Still held: the crowd was not simply dropped to make room.
        assert files_held >= files_before + IDLE_TLS
        print(
            f"held {len(idle)} idle connections; {len(results)} certificates; "
            f"agent files {files_before} -> {files_held}; "
            f"RSS {before['VmRSS'] // 1024} -> {memory['VmRSS'] // 1024} MiB"
        )

        for sock in idle:
            sock.close()
        assert files_return_to(pid, files_before + 8)
    finally:
        agent.stop()
        dns.stop()
    assert run_scb(agent.env, "check").returncode == 0


def _named(dns: DnsThread, name: str) -> str:
    dns.records[name] = ["127.0.0.2"]
    return name


def files_return_to(pid: int, bound: int) -> bool:
    """The agent lets go of closed connections (polled; no timing claim)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hostile.open_files(pid) <= bound:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def capped(tmp_path):
    dns = DnsThread({}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.configure("timeouts", message=600)
    agent.configure("limits", connections_per_address=2, connections_total=5)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        dns.stop()


def refusal(agent: Agent, source: str) -> dict:
    with Wire(agent.port, agent.state_dir / "ca" / "root.pem", source) as wire:
        return wire.last_word()


def test_the_per_address_cap_refuses_the_next_connection_and_frees_on_close(capped):
    held = open_idle_tls_from(capped, ["127.0.1.1"] * 2)

    refused = refusal(capped, "127.0.1.1")
    assert refused["code"] == "rate_limited"
    assert "too many connections from 127.0.1.1" in refused["message"]
    assert "limits.connections_per_address = 2" in refused["message"]

    held[0].close()
    assert root_served_when_free(capped, "127.0.1.1")
    for sock in held[1:]:
        sock.close()


def test_the_global_cap_refuses_every_address_once_full(capped):
    sources = ["127.0.1.1", "127.0.1.1", "127.0.1.2", "127.0.1.2", "127.0.1.3"]
    held = open_idle_tls_from(capped, sources)

    refused = refusal(capped, "127.0.1.4")
    assert refused["code"] == "rate_limited"
    assert "limits.connections_total = 5" in refused["message"]

    held[-1].close()
    assert root_served_when_free(capped, "127.0.1.4")
    for sock in held[:-1]:
        sock.close()


def open_idle_tls_from(agent: Agent, sources: list[str]) -> list:
    root_pem = agent.state_dir / "ca" / "root.pem"
    socks = [Wire(agent.port, root_pem, source).sock for source in sources]
    # The client's handshake can finish before the agent's does: wait until
    # the agent counts every one, so the next connection meets a full cap.
    deadline = time.monotonic() + 30
    while agent.call("status")["connections"] < len(socks):
        assert time.monotonic() < deadline, agent.call("status")
        time.sleep(0.05)
    return socks


def root_served_when_free(agent: Agent, source: str) -> bool:
    """The agent frees a slot when its connection closes (polled)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Wire(agent.port, agent.state_dir / "ca" / "root.pem", source) as wire:
            wire.send(hostile.message(type="root"))
            if wire.last_word()["type"] == "root":
                return True
        time.sleep(0.1)
    return False
