"""Cost of the limit checks per request, beside one TLS 1.3 handshake.

    python benchmarks/limits.py
    python benchmarks/limits.py --requests 200000 --bans 10000

The checks are the agent's own Guard (scb_agent.guard) over a real store in
a temporary directory, doing what one issued request does: take a connection
slot, look for a ban on the peer, take a token from the peer's request
bucket, look for a pause of the names and check their certificates-per-week
bucket, then count the certificate. Peers cycle through 10,000 addresses
and names, so the buckets are many, and the store holds --bans active bans
(addresses, names and a few networks) that never match.

Two figures: the time a request waits on the checks, and the same plus the
store writer persisting every TAT they moved (its thread's work, amortized
over the group commits that carry it). The baseline is a TLS 1.3 handshake
on loopback with the agent's TLS settings (ECDSA P-256, no session tickets),
client and server in this same process, measured in the same run.
"""

import argparse
import asyncio
import platform
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from scb_agent.agent import server_tls_context
from scb_agent.events import EventBus
from scb_agent.guard import Guard
from scb_agent.store_writer import StoreWriter
from scb_core.authority_files import pem_of
from scb_core.ca import create_root, issue_server_certificate
from scb_core.config import Limits
from scb_core.keys import generate_key, private_key_pem

SUBJECTS = 10_000
HANDSHAKES = 300
UNLIMITED = 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--bans", type=int, default=1_000)
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, OpenSSL {ssl.OPENSSL_VERSION}")

    with tempfile.TemporaryDirectory() as scratch:
        checks, with_store = asyncio.run(
            time_checks(Path(scratch), args.requests, args.bans)
        )
        handshake = asyncio.run(time_handshakes(Path(scratch), HANDSHAKES))

    print(f"limit checks per request, {args.requests} requests, {args.bans} bans:")
    print(f"  in the request       {checks * 1e6:8.2f} µs")
    print(f"  with its store write {with_store * 1e6:8.2f} µs")
    print(f"TLS 1.3 handshake, median of {HANDSHAKES}: {handshake * 1e6:8.1f} µs")
    print(f"ratio check / handshake:              {checks / handshake:.4f}")
    print(f"ratio check with store / handshake:   {with_store / handshake:.4f}")


async def time_checks(scratch: Path, requests: int, bans: int) -> tuple[float, float]:
    writer = StoreWriter(scratch / "store.sqlite")
    limits = Limits(
        requests_per_address_per_hour=UNLIMITED,
        certificates_per_name_set_per_week=UNLIMITED,
    )
    guard = Guard(limits, writer, EventBus())
    await writer.call(lambda store: _add_bans(store, bans))
    await guard.load()

    peers = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(SUBJECTS)]
    names = [[f"host{n}.lab.home.arpa"] for n in range(SUBJECTS)]
    start = time.perf_counter()
    for i in range(requests):
        peer, request_names = peers[i % SUBJECTS], names[i % SUBJECTS]
        with guard.connection(peer):
            guard.check_peer(peer)
            guard.admit_request(peer)
            guard.check_names(request_names)
            guard.issued(request_names)
    checked = time.perf_counter()
    await writer.call(lambda store: None)  # every posted TAT is committed
    flushed = time.perf_counter()
    writer.close()
    return (checked - start) / requests, (flushed - start) / requests


def _add_bans(store, count: int) -> None:
    forever = None
    for n in range(count):
        if n % 100 == 0:
            kind, value = "network", f"192.168.{n // 100 % 256}.0/24"
        elif n % 2:
            kind, value = "address", f"172.16.{n // 256 % 256}.{n % 256}"
        else:
            kind, value = "name", f"banned{n}.home.arpa"
        store.add_ban(kind, value, "benchmark", "bench", time.time(), forever)


async def time_handshakes(scratch: Path, count: int) -> float:
    root, cert, key = _server_files(scratch)
    server_context = server_tls_context(cert, key)
    client_context = ssl.create_default_context(cafile=root)
    client_context.minimum_version = ssl.TLSVersion.TLSv1_3

    async def hang_up(reader, writer):
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    times = []
    for _ in range(count):
        start = time.perf_counter()
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        )
        times.append(time.perf_counter() - start)
        writer.close()
    server.close()
    return statistics.median(times)


def _server_files(scratch: Path) -> tuple[Path, Path, Path]:
    """A root and the P-256 server certificate it issued for localhost, as
    `scb-agent init` makes them."""
    root_key, server_key = generate_key("ec-p256"), generate_key("ec-p256")
    root = create_root("benchmark root", root_key)
    server = issue_server_certificate(root, root_key, ["localhost"], server_key)
    paths = scratch / "root.pem", scratch / "server.pem", scratch / "server.key"
    paths[0].write_bytes(pem_of(root))
    paths[1].write_bytes(pem_of(server))
    paths[2].write_bytes(private_key_pem(server_key))
    return paths


if __name__ == "__main__":
    main()
