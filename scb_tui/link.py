"""The console's line to the agent: admin calls and the event feed.

Every call opens its own connection. A search the operator typed over, or a
slow listing, then never holds up an approval, and a call cancelled half way
cannot leave a stray reply on a connection that the next call would misread.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from scb_agent.admin_client import MAX_LINE, AdminClient, AgentUnavailable

CALL_TIMEOUT = 10.0


class AgentLink:
    def __init__(self, socket: Path):
        self.socket = socket

    @property
    def where(self) -> str:
        return str(self.socket)

    async def call(self, name: str, **args):
        """One admin command; ScbError if refused, AgentUnavailable if nobody
        answers in time."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                async with AdminClient(self.socket) as client:
                    return await client.call(name, **args)
        except TimeoutError as exc:
            raise AgentUnavailable(
                f"the agent did not answer {name!r} within {CALL_TIMEOUT:.0f} s"
            ) from exc
        except OSError as exc:
            raise AgentUnavailable(f"cannot reach the agent: {exc}") from exc

    async def feed(self) -> AsyncIterator[dict]:
        """The event feed, opened by a `connected` event once subscribed.

        Screens reload on `connected`, so nothing that happened while the
        console was away is missed: the subscription is in place before they
        ask for the current state.
        """
        try:
            reader, writer = await asyncio.open_unix_connection(
                self.socket, limit=MAX_LINE
            )
        except OSError as exc:
            raise AgentUnavailable(f"no agent is listening on {self.socket}") from exc

        try:
            writer.write(b'{"id": 0, "command": "subscribe"}\n')
            if not await reader.readline():
                raise AgentUnavailable("the agent closed the event feed")
            yield {"event": "connected"}
            while line := await reader.readline():
                yield json.loads(line)
        except OSError as exc:
            raise AgentUnavailable(f"the agent went away: {exc}") from exc
        finally:
            writer.close()
        raise AgentUnavailable("the agent closed the event feed")
