"""The benchmarks' DNS: DnsResponder in a process of its own.

Run as `python dns_server.py NAME=IP...`; prints the port it listens on (UDP
and TCP, 127.0.0.1) and serves until killed. Its own process keeps its CPU
out of both the agent's figures and the clients'.
"""

import asyncio
import sys

from scb_agent.dns_responder import DnsResponder


async def serve(records: dict[str, list[str]]) -> None:
    async with DnsResponder(records) as responder:
        print(responder.port, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    records: dict[str, list[str]] = {}
    for pair in sys.argv[1:]:
        name, _, address = pair.partition("=")
        records.setdefault(name, []).append(address)
    asyncio.run(serve(records))


if __name__ == "__main__":
    main()
