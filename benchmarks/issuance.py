"""Issuance throughput, latency and agent CPU, beside raw asyncio TLS.

    python benchmarks/issuance.py           # the full run
    python benchmarks/issuance.py --quick   # under a minute

For 1, 8, 32 and 128 concurrent in-process clients it issues ECDSA P-256
certificates from a real agent process over loopback, and, in the same run
on the same machine, times a minimal asyncio TLS 1.3 echo server doing
connect + handshake + one frame each way. Each row prints both rates and
their ratio, and the CPU each server process spent per operation (from
/proc/PID/stat). The 1-client row is the sequential figure.

Both runs then time the `scb-agent request` command (request_command.py);
the full run also measures the agent's RSS over 10,000 issuances on a fresh
agent (memory.py). The last line is always the throughput ratio.
"""

import argparse
import os
import platform
import subprocess
import sys
from contextlib import contextmanager

import memory
import request_command
from lab import HERE, Lab, cpu_seconds
from load import echo_all, issue_all, make_requests

from scb_agent.serve import event_loop_name, run_loop

CLIENTS = (1, 8, 32, 128)
SEQUENTIAL = 100  # issuances behind the sequential p50
QUICK = {1: SEQUENTIAL, 8: 200, 32: 400, 128: 512}
FULL = {1: 300, 8: 1500, 32: 3000, 128: 3840}
WARM_UP = 20
GOALS = {"ratio_32": 0.4, "cpu_ms": 1.0, "sequential_p50_ms": 5.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"event loop {event_loop_name()}"
    )
    with Lab() as lab, echo_server(lab) as echo:
        rows = run_loop(measure(lab, echo, plan))
        command = request_command.measure(lab, request_command.RUNS)
    figures = None
    if not quick:
        with Lab() as lab:
            figures = memory.measure(lab, memory.ISSUANCES)
    report(rows, command, figures)


@contextmanager
def echo_server(lab: Lab):
    """The baseline server, with the agent's own TLS certificate and key."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "tls_echo.py"),
            str(lab.ca_dir / "server.pem"),
            str(lab.ca_dir / "server.key"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        process.port = int(process.stdout.readline())
        yield process
    finally:
        process.terminate()
        process.wait()


async def measure(lab: Lab, echo, plan: dict[int, int]) -> list[dict]:
    root_pem = lab.root_pem
    echo_address = ("127.0.0.1", echo.port)
    await issue_all(lab.server, root_pem, make_requests(WARM_UP), 4)
    await echo_all(echo_address, root_pem, WARM_UP, 4)

    rows = []
    for clients in CLIENTS:
        count = plan[clients]
        requests = make_requests(count)

        before = cpu_seconds(echo.pid)
        raw = await echo_all(echo_address, root_pem, count, clients)
        raw_cpu = cpu_seconds(echo.pid) - before

        before = lab.agent_cpu_seconds()
        issued = await issue_all(lab.server, root_pem, requests, clients)
        agent_cpu = lab.agent_cpu_seconds() - before

        rows.append(
            {
                "clients": clients,
                "issued": issued,
                "raw": raw,
                "cpu_ms": agent_cpu / count * 1000,
                "raw_cpu_ms": raw_cpu / count * 1000,
            }
        )
        print_row(rows[-1])
    return rows


HEADER = (
    f"{'clients':>7} {'issued/s':>9} {'raw TLS/s':>10} {'ratio':>6}"
    f" {'p50 ms':>7} {'raw p50':>8} {'p99 ms':>7} {'raw p99':>8}"
    f" {'CPU ms':>7} {'raw CPU':>8}"
)


def print_row(row: dict) -> None:
    if row["clients"] == CLIENTS[0]:
        print(HEADER)
    issued, raw = row["issued"], row["raw"]
    print(
        f"{row['clients']:>7} {issued.rate:>9.1f} {raw.rate:>10.1f}"
        f" {issued.rate / raw.rate:>6.2f}"
        f" {issued.p50_ms:>7.2f} {raw.p50_ms:>8.2f}"
        f" {issued.p99_ms:>7.2f} {raw.p99_ms:>8.2f}"
        f" {row['cpu_ms']:>7.2f} {row['raw_cpu_ms']:>8.2f}",
        flush=True,
    )


def report(rows: list[dict], command: tuple, figures: dict | None) -> None:
    by_clients = {row["clients"]: row for row in rows}
    sequential, at_32 = by_clients[1], by_clients[32]
    ratio = at_32["issued"].rate / at_32["raw"].rate
    cpu = sum(r["cpu_ms"] * r["issued"].operations for r in rows) / sum(
        r["issued"].operations for r in rows
    )
    raw_cpu = sum(r["raw_cpu_ms"] * r["raw"].operations for r in rows) / sum(
        r["raw"].operations for r in rows
    )

    print()
    print("CPU: ms of the server process per issuance (agent) or per connection")
    print("(raw TLS echo server), user + system, every thread.")
    _goal(
        "sequential p50",
        f"{sequential['issued'].p50_ms:.2f} ms",
        f"raw TLS {sequential['raw'].p50_ms:.2f} ms",
        sequential["issued"].p50_ms / sequential["raw"].p50_ms,
        sequential["issued"].p50_ms <= GOALS["sequential_p50_ms"],
        f"<= {GOALS['sequential_p50_ms']:g} ms",
    )
    _goal(
        "agent CPU per issuance",
        f"{cpu:.2f} ms",
        f"raw TLS {raw_cpu:.2f} ms",
        cpu / raw_cpu,
        cpu <= GOALS["cpu_ms"],
        f"<= {GOALS['cpu_ms']:g} ms",
    )
    _goal(
        "throughput at 32 clients",
        f"{at_32['issued'].rate:.1f}/s",
        f"raw TLS {at_32['raw'].rate:.1f}/s",
        ratio,
        ratio >= GOALS["ratio_32"],
        f">= {GOALS['ratio_32']:g} x raw TLS",
    )
    request_command.report(*command)
    if figures is not None:
        memory.report(figures)
    print(f"throughput ratio to raw TLS at 32 clients: {ratio:.2f}")


def _goal(what, figure, baseline, ratio, met, goal) -> None:
    verdict = "met" if met else "NOT met"
    print(
        f"{what}: {figure} ({baseline}, ratio {ratio:.2f}); goal {goal}: {verdict}"
    )


if __name__ == "__main__":
    main()
