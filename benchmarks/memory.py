"""Agent memory (RSS) before and after 10,000 issuances.

    python benchmarks/memory.py [--issuances N]

The agent is a real `scb-agent serve` process; its RSS comes from
/proc/PID/status. "Before" is taken after a warm-up, so that imports, the
TLS context, caches and SQLite's page cache have filled; the growth from
there over N issuances (32 concurrent clients, ECDSA P-256) is what a
long-running agent would keep accumulating. The baseline beside it, in the
same run, is the agent's RSS right after it started.

Both readings wait until the agent has been idle for one heap-trim interval
(scb_agent/heap.py): the agent hands freed heap pages back every
TRIM_INTERVAL seconds while busy, so under load its RSS runs up to that
interval's worth of freed pages above the settled figure. The reading taken
the moment the last issuance finished is printed as well.
"""

import argparse
import time

from lab import Lab
from load import issue_all, make_requests

from scb_agent.heap import TRIM_INTERVAL
from scb_agent.serve import run_loop

ISSUANCES = 10_000
WARM_UP = 500
CLIENTS = 32
BATCH = 2_000  # CSRs are made per batch, to keep the benchmark's own memory low
GOAL_MB = 5.0
MB = 1024 * 1024


def measure(lab: Lab, issuances: int) -> dict:
    started = lab.agent_rss_bytes()
    root_pem = lab.root_pem
    run_loop(issue_all(lab.server, root_pem, make_requests(WARM_UP), CLIENTS))
    before = settled_rss(lab)

    done = 0
    while done < issuances:
        count = min(BATCH, issuances - done)
        run_loop(issue_all(lab.server, root_pem, make_requests(count), CLIENTS))
        done += count
    busy = lab.agent_rss_bytes()
    return {
        "issuances": issuances,
        "started": started,
        "before": before,
        "busy": busy,
        "after": settled_rss(lab),
    }


def settled_rss(lab: Lab) -> int:
    time.sleep(TRIM_INTERVAL * 1.5)
    return lab.agent_rss_bytes()


def report(figures: dict) -> None:
    started, before, after = figures["started"], figures["before"], figures["after"]
    growth_mb = (after - before) / MB
    per_10k = growth_mb * 10_000 / figures["issuances"]
    verdict = "met" if per_10k <= GOAL_MB else "NOT met"
    print(
        f"agent RSS: {before / MB:.1f} MB after warm-up, {after / MB:.1f} MB after "
        f"{figures['issuances']:,} issuances (at start {started / MB:.1f} MB; "
        f"ratio after/before {after / before:.3f}); "
        f"{figures['busy'] / MB:.1f} MB the moment the last one finished"
    )
    print(
        f"agent RSS growth: {growth_mb:.2f} MB over {figures['issuances']:,} "
        f"issuances, {per_10k:.2f} MB per 10,000; goal <= {GOAL_MB:g} MB: {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuances", type=int, default=ISSUANCES)
    issuances = parser.parse_args().issuances
    with Lab() as lab:
        report(measure(lab, issuances))


if __name__ == "__main__":
    main()
