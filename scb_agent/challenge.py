"""Both ends of the challenge connection (DESIGN, JASC/1 step 4).

The certifier connects to each resolved address on the host's port, writes
`JASC/1 ID\\n` and reads back one line, `TOKEN.THUMB\\n`: the token bound to the
thumbprint of the key in the CSR. The host's responder answers only its own
request id, and only once per connection.
"""

import asyncio
import hmac
import logging

from scb_core.errors import ScbError

logger = logging.getLogger(__name__)

MAX_LINE = 512


def key_authorization(token: str, thumb: str) -> bytes:
    return f"{token}.{thumb}".encode()


async def probe(
    address: str, port: int, request_id: str, expected: bytes, timeout: float
) -> None:
    """Ask the host at address:port for the key authorization, or raise."""
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                address, port, limit=MAX_LINE
            )
    except TimeoutError as exc:
        raise ScbError(
            "connect_failed", f"no connection to {where} within {timeout:g} s"
        ) from exc
    except OSError as exc:
        raise ScbError(
            "connect_failed", f"cannot connect to {where}: {exc.strerror or exc}"
        ) from exc

    try:
        _refuse_self_connect(writer, where)
        writer.write(f"JASC/1 {request_id}\n".encode())
        line = await _read_answer(reader, where, timeout)
    finally:
        writer.close()

    if not hmac.compare_digest(line, expected):
        raise ScbError(
            "challenge_failed",
            f"{where} answered with the wrong key authorization",
        )


def _refuse_self_connect(writer: asyncio.StreamWriter, where: str) -> None:
    """Loopback lets a connect to an unused port reach itself: that is no host."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.getsockname() == sock.getpeername():
        raise ScbError("connect_failed", f"nothing listens on {where}")


async def _read_answer(reader, where: str, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            line = await reader.readuntil(b"\n")
    except TimeoutError as exc:
        raise ScbError(
            "challenge_failed", f"{where} did not answer within {timeout:g} s"
        ) from exc
    except asyncio.LimitOverrunError as exc:
        raise ScbError(
            "challenge_failed", f"{where} sent a line over {MAX_LINE} bytes"
        ) from exc
    except asyncio.IncompleteReadError as exc:
        raise ScbError(
            "challenge_failed", f"{where} closed the connection without answering"
        ) from exc
    except OSError as exc:
        raise ScbError("challenge_failed", f"{where} failed: {exc}") from exc
    return line.rstrip(b"\n")


class ChallengeResponder:
    """The host's listener: answers `JASC/1 ID` with the key authorization."""

    def __init__(
        self,
        request_id: str,
        answer: bytes,
        port: int,
        host: str | None = None,
        timeout: float = 10.0,
    ):
        self.request_id = request_id
        self.answer = answer
        self.port = port
        self.host = host or None  # None: every address, IPv4 and IPv6
        self.timeout = timeout
        self.answered = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._answer, self.host, self.port, limit=MAX_LINE
            )
        except OSError as exc:
            where = f"{self.host or '*'}:{self.port}"
            raise ScbError(
                "connect_failed",
                f"cannot listen for the challenge on {where}: {exc.strerror or exc}",
            ) from exc

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.stop()

    async def _answer(self, reader, writer) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                line = await reader.readuntil(b"\n")
            if line.rstrip(b"\r\n") == f"JASC/1 {self.request_id}".encode():
                writer.write(self.answer + b"\n")
                await writer.drain()
                self.answered += 1
        except (TimeoutError, OSError, asyncio.LimitOverrunError) as exc:
            logger.debug("challenge connection dropped: %s", exc)
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()
