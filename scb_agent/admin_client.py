"""A client of the admin socket, for `scb-agent admin` and the console."""

import asyncio
import itertools
import json
from pathlib import Path

from scb_core.errors import ScbError

MAX_LINE = 1 << 20


class AgentUnavailable(Exception):
    """No agent answers on the admin socket."""


class AdminClient:
    def __init__(self, path: Path):
        self.path = path
        self._ids = itertools.count(1)
        self._reader = self._writer = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                self.path, limit=MAX_LINE
            )
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentUnavailable(
                f"no agent is listening on {self.path}: is `scb-agent serve` running?"
            ) from exc

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def call(self, name: str, **args):
        """Run one admin command; ScbError if the agent refuses it."""
        async with self._lock:
            if self._writer is None:
                await self.connect()
            request = {"id": next(self._ids), "command": name, "args": args}
            try:
                self._writer.write(json.dumps(request).encode() + b"\n")
                line = await self._reader.readline()
            except (ConnectionError, OSError) as exc:
                self._writer = None
                raise AgentUnavailable(f"the agent went away: {exc}") from exc
            if not line:
                self._writer = None
                raise AgentUnavailable("the agent closed the admin connection")

        reply = json.loads(line)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ScbError(error.get("code", "internal"), error.get("message", "?"))
        return reply.get("result")

