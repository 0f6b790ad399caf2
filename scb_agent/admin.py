"""The admin socket: newline-delimited JSON between the agent and operators.

A Unix socket in the state dir, mode 0600, so only the agent's own user can
steer it. Each line a client sends is one request:

    {"id": 1, "command": "certificates", "args": {"search": "svc"}}

and gets one reply line, `{"id": 1, "ok": true, "result": ...}` or
`{"id": 1, "ok": false, "error": {"code": ..., "message": ...}}`. The command
`subscribe` turns the rest of the connection into the event feed: one line
per change (`{"event": "issued", "at": ..., ...}`) until the client leaves.

Handlers register with `@command(NAME)`; `scb-agent admin` and the console
are clients, so only the agent ever holds the CA key.
"""

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from scb_core.errors import ScbError

logger = logging.getLogger(__name__)

MAX_LINE = 1 << 20
Handler = Callable[..., Awaitable[object]]
HANDLERS: dict[str, Handler] = {}


def command(name: str):
    """Register an admin command: `async def handler(agent, **args)`."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


class AdminServer:
    def __init__(self, agent, path: Path):
        self.agent = agent
        self.path = path
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        # Importing the handler modules registers their commands.
        from . import admin_commands  # noqa: F401

        self.path.unlink(missing_ok=True)
        old_mask = os.umask(0o177)  # the socket is born 0600, never wider
        try:
            self.server = await asyncio.start_unix_server(
                self._serve, self.path, limit=MAX_LINE
            )
        finally:
            os.umask(old_mask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader, writer) -> None:
        try:
            while line := await reader.readline():
                reply, subscribe = await self._answer(line)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
                if subscribe:
                    await self._stream_events(writer)
                    return
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            logger.debug("admin client dropped: %s", exc)
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> tuple[dict, bool]:
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ScbError("bad_request", "an admin request is a JSON object")
            request_id = request.get("id")
            name = request.get("command")
            args = request.get("args") or {}
            if name == "subscribe":
                return {"id": request_id, "ok": True, "result": None}, True
            handler = HANDLERS.get(name)
            if handler is None:
                raise ScbError("bad_request", f"unknown admin command {name!r}")
            if not isinstance(args, dict):
                raise ScbError("bad_request", "admin args must be a JSON object")
            result = await handler(self.agent, **args)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            error = ScbError("bad_request", "an admin request is one line of JSON")
            return _failure(request_id, error), False
        except TypeError as exc:
            error = ScbError("bad_request", f"bad arguments: {exc}")
            return _failure(request_id, error), False
        except ScbError as exc:
            return _failure(request_id, exc), False
        return {"id": request_id, "ok": True, "result": result}, False

    async def _stream_events(self, writer) -> None:
        feed = self.agent.events.subscribe()
        try:
            while True:
                event = await feed.get()
                writer.write(json.dumps(event).encode() + b"\n")
                await writer.drain()
                if event["event"] == "overflow":
                    return
        finally:
            self.agent.events.unsubscribe(feed)


def _failure(request_id, error: ScbError) -> dict:
    return {
        "id": request_id,
        "ok": False,
        "error": {"code": error.code, "message": error.message},
    }
