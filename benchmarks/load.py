"""Concurrent in-process clients: issuances against the agent, or bare TLS.

Both kinds of client open a fresh TLS 1.3 connection per operation with the
same client context, so the only difference between the two figures is what
the server does after the handshake. Keys and CSRs are made before the clock
starts: generating them is the host's work, not the issuance's.
"""

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

from lab import HOST_ADDRESS, NAME, challenge_ports

from scb_agent.client import connect, obtain_certificate
from scb_core.csr import build_csr
from scb_core.keys import generate_key, thumbprint


@dataclass
class Run:
    """What one batch of operations measured."""

    operations: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99) * 1000


def make_requests(count: int) -> list[tuple[str, str]]:
    """`count` fresh (CSR PEM, key thumbprint) pairs for NAME, ECDSA P-256."""
    requests = []
    for _ in range(count):
        key = generate_key("ec-p256")
        requests.append((build_csr([NAME], key), thumbprint(key.public_key())))
    return requests


async def issue_all(
    server: tuple[str, int], root_pem: str, requests: list, clients: int
) -> Run:
    """Issue one certificate per request, `clients` at a time."""
    pending = iter(requests)
    latencies: list[float] = []

    async def client(challenge_port: int) -> None:
        for csr, thumb in pending:
            started = time.perf_counter()
            await obtain_certificate(
                server, root_pem, csr, thumb, challenge_port, HOST_ADDRESS
            )
            latencies.append(time.perf_counter() - started)

    ports = challenge_ports(clients)
    return await _timed(latencies, [client(port) for port in ports])


async def echo_all(
    server: tuple[str, int], root_pem: str, count: int, clients: int
) -> Run:
    """`count` connect + handshake + one frame each way, `clients` at a time."""
    remaining = iter(range(count))
    latencies: list[float] = []
    body = json.dumps({"type": "root"}).encode()
    frame = len(body).to_bytes(4, "big") + body

    async def client() -> None:
        for _ in remaining:
            started = time.perf_counter()
            conversation = await connect(server, root_pem)
            conversation.send(frame)
            await conversation.reader.readexactly(len(frame))
            await conversation.close()
            latencies.append(time.perf_counter() - started)

    return await _timed(latencies, [client() for _ in range(clients)])


async def _timed(latencies: list[float], clients: list) -> Run:
    started = time.perf_counter()
    await asyncio.gather(*clients)
    return Run(len(latencies), time.perf_counter() - started, latencies)
