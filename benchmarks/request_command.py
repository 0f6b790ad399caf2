"""Wall time of one `scb-agent request` command, beside bare Python startup.

    python benchmarks/request_command.py [--runs N]

Runs the installed `scb-agent` script, as a host's timer would, for one
issuance against a real agent over loopback, several times; each run is a
fresh process that makes its key, answers the challenge and writes the
certbot files. The baseline, timed in the same run, is the least any Python
command costs: `python -c pass`. What is left between the two is imports,
key generation, the conversation and the file writes.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lab import HOST_ADDRESS, NAME, Lab, challenge_ports

RUNS = 11
GOAL_MS = 245.0


def scb_agent_command() -> list[str]:
    """The console script pip installed beside this Python, else `-m`."""
    script = Path(sys.executable).parent / "scb-agent"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "scb_agent.cli"]


def wall_ms(argv: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr}")
    return elapsed


def measure(lab: Lab, runs: int) -> tuple[float, float]:
    """Median wall ms of `scb-agent request` and of `python -c pass`."""
    env = lab.host_env()
    port = challenge_ports(1)[0]
    request = [
        *scb_agent_command(),
        "request", NAME,
        "--challenge-port", str(port),
        "--challenge-bind", HOST_ADDRESS,
    ]  # fmt: skip
    baseline = [sys.executable, "-c", "pass"]

    wall_ms(request, env)  # warm the page cache and the agent's first request
    requests, bares = [], []
    for _ in range(runs):  # interleaved, so both see the same machine load
        requests.append(wall_ms(request, env))
        bares.append(wall_ms(baseline))
    return statistics.median(requests), statistics.median(bares)


def report(request_ms: float, bare_ms: float) -> None:
    verdict = "met" if request_ms < GOAL_MS else "NOT met"
    print(
        f"scb-agent request, one issuance: {request_ms:.0f} ms wall "
        f"(python -c pass {bare_ms:.0f} ms, ratio {request_ms / bare_ms:.2f}); "
        f"goal < {GOAL_MS:g} ms: {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    runs = parser.parse_args().runs
    print(f"command: {' '.join(scb_agent_command())} request ({runs} runs, median)")
    with Lab() as lab:
        report(*measure(lab, runs))


if __name__ == "__main__":
    main()
