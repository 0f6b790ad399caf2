"""One issuance, from a checked CSR to a committed, sent certificate.

The order is the security argument: every cheap refusal (policy, port) comes
before any DNS query or outbound connection, and the certificate is durably in
the store before a single byte of it reaches the client.
"""

import asyncio
import base64
import logging
import secrets
import time

from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.ca import issue_leaf
from scb_core.dns import check_caa, resolve_addresses
from scb_core.errors import ScbError
from scb_core.keys import thumbprint
from scb_core.policy import (
    check_address,
    check_challenge_port,
    check_csr,
    requested_names,
)
from scb_core.protocol import CertificateRequested, Ready
from scb_core.store import CertificateRow, format_serial

from .challenge import key_authorization, probe

logger = logging.getLogger(__name__)


def new_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


class Issuance:
    """The certifier's side of one request, driven over a Conversation."""

    def __init__(self, agent, conversation, peer: str):
        self.agent = agent
        self.conversation = conversation
        self.peer = peer
        self.request_id = secrets.token_hex(8)
        self.names: list[str] = []
        self.validating = False  # in a stage whose failure counts against limits

    async def run(
        self, request: CertificateRequested, deadline: asyncio.Timeout
    ) -> str:
        """Issue, or raise ScbError; returns the serial.

        `deadline` is the whole request's budget, paused while an operator
        decides on approval.
        """
        self.deadline = deadline
        guard = self.agent.guard
        guard.admit_request(self.peer)
        try:
            spec = check_csr(request.csr_pem, request.validity_days, self.agent.policy)
        except ScbError:
            # The store and the log say what was asked for, even when refused.
            self._name(requested_names(request.csr_pem))
            raise
        self._name(spec.names)
        guard.check_names(spec.names)

        token = new_token()
        expected = key_authorization(token, thumbprint(spec.public_key))
        expires_in = int(self.agent.config.timeouts.request)
        self.conversation.send(
            self.conversation.protocol.send_challenge(
                self.request_id, token, expires_in
            )
        )
        ready = await self.conversation.next_event()
        assert isinstance(ready, Ready)  # the protocol allows nothing else here
        check_challenge_port(ready.port, self.agent.policy)

        await self._watched(self._validate(ready.port, expected))
        return await self._sign(spec)

    async def _validate(self, port: int, expected: bytes) -> None:
        addresses = await self._resolve()
        await self._connect(addresses, port, expected)
        await self._await_approval()

    async def _watched(self, work) -> None:
        """Run `work` while listening to the client, who must now be silent.

        JASC/1 gives the client no say while the server works: a message now
        (a second `ready`, say) is out of order, and a hang-up means nobody
        waits for the answer. Either stops the DNS and challenge work at once.
        Signing is not watched: it is quick, and once a commit has begun
        nothing may interrupt it.
        """
        work = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(self.conversation.next_event(patient=True))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                watch.result()  # raises: nothing the client says is in order
            await work
        finally:
            for task in (work, watch):
                task.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)

    def record_received(self) -> None:
        at = time.time()
        request_id, peer = self.request_id, self.peer

        def record(store):
            store.add_request(request_id, peer, [], at)
            store.audit("received", "agent", at, peer=peer, request_id=request_id)

        self.agent.writer.post(record)
        self.agent.events.publish("request_received", request_id=request_id, peer=peer)

    def _name(self, names: list[str]) -> None:
        """The names the request asks for, known once its CSR is read."""
        self.names = names
        request_id = self.request_id
        self.agent.writer.post(lambda store: store.set_request_names(request_id, names))

    def stage(self, stage: str) -> None:
        at = time.time()
        request_id, peer, names = self.request_id, self.peer, list(self.names)
        self.validating = stage in ("resolving", "connecting")

        def record(store):
            store.add_stage(request_id, stage, at)
            store.audit(
                "stage",
                "agent",
                at,
                peer=peer,
                names=names,
                request_id=request_id,
                detail=stage,
            )

        self.agent.writer.post(record)
        self.agent.events.publish(
            "stage_changed", request_id=request_id, stage=stage, names=names
        )
        self.conversation.send(self.conversation.protocol.send_status(stage))

    async def _resolve(self) -> set:
        self.stage("resolving")
        config = self.agent.config
        resolvers = self.agent.resolvers
        lookups = [
            resolve_addresses(
                name,
                resolvers,
                timeout=config.timeouts.dns,
                require_dnssec=config.require_dnssec,
            )
            for name in self.names
        ]
        if config.caa_identities:
            lookups += [
                check_caa(
                    name, resolvers, config.caa_identities, timeout=config.timeouts.dns
                )
                for name in self.names
            ]
        results = await asyncio.gather(*lookups)

        addresses = set()
        for name, found in zip(self.names, results, strict=False):
            for address in found:
                check_address(address, name, self.agent.policy)
            addresses |= found
        return addresses

    async def _connect(self, addresses: set, port: int, expected: bytes) -> None:
        self.stage("connecting")
        timeout = self.agent.config.timeouts.challenge
        probes = [
            probe(str(address), port, self.request_id, expected, timeout)
            for address in sorted(addresses, key=str)
        ]
        # Every address must answer: any one of them may be the one clients use.
        await asyncio.gather(*probes)

    async def _await_approval(self) -> None:
        if not self.agent.config.needs_approval(self.names):
            return

        self.stage("awaiting_approval")
        decision = asyncio.get_running_loop().create_future()
        self.agent.approvals[self.request_id] = decision
        budget = self.deadline
        remaining = budget.when() - asyncio.get_running_loop().time()
        budget.reschedule(None)  # an operator's pace is not the client's fault
        try:
            async with asyncio.timeout(self.agent.config.approval_timeout):
                approved, reason = await decision
        except TimeoutError as exc:
            raise ScbError(
                "timeout",
                f"no operator decided within {self.agent.config.approval_timeout} s",
            ) from exc
        finally:
            self.agent.approvals.pop(self.request_id, None)
            budget.reschedule(asyncio.get_running_loop().time() + max(remaining, 1))

        if not approved:
            raise ScbError("denied", f"an operator denied the request: {reason}")

    async def _sign(self, spec) -> str:
        self.stage("signing")
        leaf = issue_leaf(
            self.agent.authority, spec, self.agent.config.effective_crl_url or None
        )
        serial = format_serial(leaf.serial_number)
        pem = leaf.public_bytes(Encoding.PEM).decode()
        row = CertificateRow(
            serial=serial,
            request_id=self.request_id,
            names=self.names,
            not_before=leaf.not_valid_before_utc.timestamp(),
            not_after=leaf.not_valid_after_utc.timestamp(),
            issued_at=time.time(),
            pem=pem,
        )
        # Counted first: the writer commits in order, so the name set's rate
        # state is on disk no later than the certificate a kill -9 might
        # leave behind (a failed commit over-counts, the safe direction).
        self.agent.guard.issued(self.names)
        await self.agent.writer.call(lambda s: self._commit(s, row))

        not_after = leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        chain = pem + self.agent.chain_pem
        self.conversation.send(
            self.conversation.protocol.send_certificate(serial, not_after, chain)
        )
        self.agent.events.publish(
            "issued", request_id=self.request_id, serial=serial, names=self.names
        )
        return serial

    def _commit(self, store, row: CertificateRow) -> None:
        store.add_certificate(row)
        store.finish_request(self.request_id, row.issued_at, serial=row.serial)
        store.audit(
            "issued",
            "agent",
            row.issued_at,
            peer=self.peer,
            names=row.names,
            serial=row.serial,
            request_id=self.request_id,
        )

    def record_failure(self, error: ScbError) -> None:
        at = time.time()
        request_id, peer, names = self.request_id, self.peer, list(self.names)

        def record(store):
            store.finish_request(
                request_id, at, error_code=error.code, error_message=error.message
            )
            store.audit(
                "limited" if error.code == "rate_limited" else "refused",
                "agent",
                at,
                peer=peer,
                names=names,
                request_id=request_id,
                detail=f"{error.code}: {error.message}",
            )

        self.agent.writer.post(record)
        self.agent.events.publish(
            "failed",
            request_id=request_id,
            names=names,
            code=error.code,
            message=error.message,
        )
