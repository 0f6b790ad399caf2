"""The certifier's network shell: TLS 1.3 in, JASC/1 through ServerProtocol.

Like hypercorn's tcp_server: read with a timeout, hand the bytes to the
protocol, act on its events, and close in `finally`. Each frame goes out in
one write, and TCP_NODELAY keeps the small frames from waiting on Nagle.
"""

import asyncio
import collections
import logging
import socket
import time

from scb_core.errors import ScbError
from scb_core.protocol import (
    MAX_FRAME,
    CertificateRequested,
    RevocationRequested,
    RootRequested,
    ServerProtocol,
)

from .issuance import Issuance
from .revocation import revoke_with_proof

logger = logging.getLogger(__name__)

READ_SIZE = MAX_FRAME + 4
# After a framing error the client may still be sending the frame it declared
# too long. The agent reads and drops those bytes for a moment: closing with
# unread bytes makes the kernel send a reset, which can wipe the error from the
# client's receive buffer before it reads it (nginx's lingering_close, bounded
# the same way: while bytes keep coming, for a second and a mebibyte at most).
LINGER_SECONDS = 1.0
LINGER_IDLE = 0.25
LINGER_BYTES = 1 << 20
STOPPED_BEFORE_DECISION = "the agent stopped before an operator decided; ask again"


class PeerClosed(Exception):
    """The client hung up: nobody is left to send an error to."""


class Conversation:
    """One connection's reads and writes, paced by the message timeout."""

    def __init__(self, reader, writer, message_timeout: float):
        self.reader = reader
        self.writer = writer
        self.protocol = ServerProtocol()
        self.message_timeout = message_timeout
        self._events: collections.deque = collections.deque()

    async def next_event(self, patient: bool = False):
        """The client's next message, whole within the message timeout.

        The clock runs for the message, not for each read: a client dripping
        one byte at a time (slowloris) gets no more time than a silent one.
        `patient` waits without a clock, while the request's own deadline
        runs.
        """
        if self._events:  # already here: no clock to start, nothing to wait for
            return self._events.popleft()
        limit = None if patient else self.message_timeout
        try:
            async with asyncio.timeout(limit):
                while not self._events:
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        raise PeerClosed()
                    self._events.extend(self.protocol.receive_data(data))
        except TimeoutError as exc:
            raise ScbError(
                "timeout",
                f"no whole message from the client within {self.message_timeout:g} s",
            ) from exc
        return self._events.popleft()

    def send(self, data: bytes) -> None:
        self.writer.write(data)


class Certifier:
    def __init__(self, agent):
        self.agent = agent
        self.tasks: set[asyncio.Task] = set()
        self.idle: set[asyncio.Task] = set()  # connected, not asked anything yet
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(
            self._serve,
            host,
            port,
            ssl=self.agent.tls_context(),
            ssl_handshake_timeout=self.agent.config.timeouts.handshake,
            limit=READ_SIZE,
            backlog=1024,
        )

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def drain(self) -> None:
        """Stop accepting, then let every request in flight finish."""
        self.server.close()
        # A connection that has asked nothing has nothing to finish: waiting
        # out its message timeout would only hold the shutdown up.
        for task in self.idle:
            task.cancel()
        # Nor will an operator decide while the agent stops: waiting out the
        # approval timeout would hold the shutdown up for minutes.
        for decision in self.agent.approvals.values():
            if not decision.done():
                decision.set_exception(ScbError("internal", STOPPED_BEFORE_DECISION))
        if self.tasks:
            await asyncio.wait(list(self.tasks))

    async def _serve(self, reader, writer) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        peer = writer.get_extra_info("peername")[0]
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        conversation = Conversation(reader, writer, self.agent.config.timeouts.message)
        try:
            with self.agent.guard.connection(peer):
                self.agent.guard.check_peer(peer)
                await self._converse(conversation, peer)
        except PeerClosed:
            logger.debug("peer %s closed the connection", peer)
        except ScbError as error:
            logger.info("peer %s: %s", peer, error)
            self._send_error(conversation, error)
            if error.code == "bad_frame":
                await _linger(reader)
        except Exception:
            logger.exception("internal error serving %s", peer)
            self._send_error(conversation, ScbError("internal", "internal error"))
        finally:
            await _close(writer)
            self.tasks.discard(task)

    async def _converse(self, conversation: Conversation, peer: str) -> None:
        task = asyncio.current_task()
        self.idle.add(task)
        try:
            first = await conversation.next_event()
        finally:
            self.idle.discard(task)
        if isinstance(first, RootRequested):
            conversation.send(conversation.protocol.send_root(self.agent.root_pem))
            return
        if isinstance(first, RevocationRequested):
            await revoke_with_proof(self.agent, conversation, peer, first)
            return
        assert isinstance(first, CertificateRequested)
        await self._issue(conversation, peer, first)

    async def _issue(self, conversation, peer: str, request) -> None:
        issuance = Issuance(self.agent, conversation, peer)
        issuance.record_received()
        started = time.monotonic()
        outcome = "issued"
        try:
            async with asyncio.timeout(self.agent.config.timeouts.request) as deadline:
                serial = await issuance.run(request, deadline)
        except TimeoutError:
            error = ScbError(
                "timeout",
                f"the request took over {self.agent.config.timeouts.request:g} s",
            )
            outcome = await self._fail(issuance, error)
            raise error from None
        except (ScbError, PeerClosed) as exc:
            error = exc if isinstance(exc, ScbError) else _hung_up()
            outcome = await self._fail(issuance, error)
            raise
        except Exception:
            outcome = await self._fail(
                issuance, ScbError("internal", "internal error")
            )
            raise
        finally:
            logger.info(
                "request %s peer %s names %s %s in %.1f ms",
                issuance.request_id,
                peer,
                ",".join(issuance.names) or "-",
                outcome,
                (time.monotonic() - started) * 1000,
            )
        logger.debug("request %s issued serial %s", issuance.request_id, serial)

    async def _fail(self, issuance: Issuance, error: ScbError) -> str:
        issuance.record_failure(error)
        if issuance.validating:
            # A failed challenge counts against the peer and the names; enough
            # of them ban it (the ban commits before the client hears back).
            await self.agent.guard.validation_failed(issuance.peer, issuance.names)
        return f"failed {error.code}"

    def _send_error(self, conversation: Conversation, error: ScbError) -> None:
        try:
            conversation.send(conversation.protocol.send_error(error))
        except RuntimeError:
            pass  # the protocol already said its last word


def _hung_up() -> ScbError:
    return ScbError("bad_request", "the client closed the connection mid-request")


async def _linger(reader) -> None:
    """Drop the client's unread bytes for a moment, so the error reaches it."""
    dropped = 0
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while dropped < LINGER_BYTES:
                async with asyncio.timeout(LINGER_IDLE):
                    data = await reader.read(READ_SIZE)
                if not data:
                    return
                dropped += len(data)
    except (TimeoutError, OSError, ConnectionError):
        pass


async def _close(writer) -> None:
    writer.close()
    try:
        async with asyncio.timeout(2):
            await writer.wait_closed()
    except (TimeoutError, OSError, ConnectionError):
        pass
