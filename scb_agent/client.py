"""The host's network shell over ClientProtocol: bootstrap and issuance."""

import asyncio
import collections
import datetime as dt
import functools
import logging
import ssl
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from scb_core.errors import ConfigError, ScbError
from scb_core.keys import PublicKey
from scb_core.paths import Paths
from scb_core.protocol import (
    MAX_FRAME,
    CertificateIssued,
    ChallengeIssued,
    ClientProtocol,
    ErrorReceived,
    RootSent,
    StageChanged,
)

from .challenge import ChallengeResponder, key_authorization

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
MESSAGE_TIMEOUT = 150.0  # the server's whole-request budget, plus slack


def read_pinned_root(paths: Paths) -> str:
    """The root PEM that `bootstrap` pinned, which every later call trusts."""
    try:
        return paths.pinned_root.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no pinned root at {paths.pinned_root}: run `scb-agent bootstrap` first"
        ) from exc


@functools.lru_cache(maxsize=8)
def tls_context(root_pem: str | None) -> ssl.SSLContext:
    """Verify the agent against the pinned root; None only for bootstrap.

    One context per root serves every connection: building one (a new
    SSL_CTX, the root parsed) took 0.2 ms of CPU beside 0.7 ms for the
    connection and handshake, and `renew` or a long-lived caller connects
    many times.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if root_pem is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=root_pem)
    return context


class ClientConversation:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.protocol = ClientProtocol()
        self._events: collections.deque = collections.deque()

    async def next_event(self, timeout: float | None = MESSAGE_TIMEOUT):
        while not self._events:
            try:
                async with asyncio.timeout(timeout):
                    data = await self.reader.read(MAX_FRAME + 4)
            except TimeoutError:
                # A hung agent, or another TLS service on that port.
                raise ScbError(
                    "timeout", f"the agent sent nothing within {timeout:g} s"
                ) from None
            if not data:
                raise ScbError(
                    "internal", "the agent closed the connection without an answer"
                )
            self._events.extend(self.protocol.receive_data(data))
        event = self._events.popleft()
        if isinstance(event, ErrorReceived):
            raise ScbError(event.code, event.message, event.retry_after)
        return event

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(2):
                await self.writer.wait_closed()
        except (TimeoutError, OSError):
            pass


async def connect(server: tuple[str, int], root_pem: str | None) -> ClientConversation:
    host, port = server
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=tls_context(root_pem),
                server_hostname=host,
                limit=MAX_FRAME + 4,
            )
    except ssl.SSLCertVerificationError as exc:
        raise ScbError(
            "internal",
            f"the agent at {host}:{port} is not certified by the pinned root "
            f"for {host}: {exc.verify_message}",
        ) from exc
    except TimeoutError as exc:
        raise ScbError(
            "connect_failed",
            f"no TLS connection to the agent at {host}:{port} "
            f"within {CONNECT_TIMEOUT:g} s",
        ) from exc
    except OSError as exc:
        raise ScbError(
            "connect_failed", f"cannot reach the agent at {host}:{port}: {exc}"
        ) from exc
    return ClientConversation(reader, writer)


async def fetch_root(server: tuple[str, int]) -> tuple[str, bytes]:
    """The root the agent offers, and the DER certificate it presented."""
    conversation = await connect(server, None)
    try:
        conversation.send(conversation.protocol.send_root_request())
        event = await conversation.next_event(CONNECT_TIMEOUT)
        assert isinstance(event, RootSent)
        presented = conversation.writer.get_extra_info("ssl_object").getpeercert(True)
        return event.pem, presented
    finally:
        await conversation.close()


async def obtain_certificate(
    server: tuple[str, int],
    root_pem: str,
    csr_pem: str,
    thumb: str,
    challenge_port: int,
    challenge_bind: str | None = None,
    validity_days: int | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> CertificateIssued:
    """Run one issuance: request, answer the challenge, receive the chain."""
    conversation = await connect(server, root_pem)
    try:
        conversation.send(conversation.protocol.send_request(csr_pem, validity_days))
        challenge = await conversation.next_event(CONNECT_TIMEOUT * 2)
        assert isinstance(challenge, ChallengeIssued)
        on_stage("challenge")

        answer = key_authorization(challenge.token, thumb)
        responder = ChallengeResponder(
            challenge.request_id, answer, challenge_port, challenge_bind
        )
        async with responder:
            conversation.send(conversation.protocol.send_ready(challenge_port))
            return await _await_certificate(conversation, on_stage)
    finally:
        await conversation.close()


async def _await_certificate(conversation, on_stage) -> CertificateIssued:
    timeout: float | None = MESSAGE_TIMEOUT
    while True:
        event = await conversation.next_event(timeout)
        if isinstance(event, CertificateIssued):
            return event
        assert isinstance(event, StageChanged)
        on_stage(event.stage)
        # An operator decides at an operator's pace; the agent bounds the wait.
        timeout = None if event.stage == "awaiting_approval" else MESSAGE_TIMEOUT


def verify_chain(
    chain_pem: str, root: x509.Certificate, names: list[str], key: PublicKey
) -> list[x509.Certificate]:
    """Before anything is written: the chain leads to our root, for our key."""
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError as exc:
        raise ScbError(
            "internal", f"the agent sent an unreadable chain: {exc}"
        ) from exc

    leaf = chain[0]
    if leaf.public_key() != key:
        raise ScbError("internal", "the certificate is not for this host's key")

    store = Store([root])
    for name in names:
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(dt.datetime.now(dt.UTC))
            .build_server_verifier(x509.DNSName(name))
        )
        try:
            verifier.verify(leaf, chain[1:])
        except Exception as exc:  # VerificationError, and odd chains' ValueErrors
            raise ScbError(
                "internal",
                f"the certificate does not verify for {name} against the "
                f"pinned root: {exc}",
            ) from exc
    return chain
