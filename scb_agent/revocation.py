"""Taking certificates back: by an operator, or by the host that holds the key.

An operator revokes through the admin socket (`scb-agent admin revoke`, the
console). A host revokes its own certificate over JASC/1: it names the
serial, we send a fresh nonce, it signs the nonce with the certificate's
private key (scb_core.proof), and we check that signature against the public
key in the certificate we issued. Nobody else can make that signature, so
nobody else can revoke the certificate this way.

Either way the revocation is committed and audited before anything is said
about it, and then a fresh CRL is published (crl_publication).
"""

import datetime as dt
import logging
import time

from cryptography import x509

from scb_core.crl import HOST_REASONS, parse_reason
from scb_core.errors import ScbError
from scb_core.proof import new_nonce, verify_proof
from scb_core.protocol import ProofSent, RevocationRequested
from scb_core.store import CertificateRow, parse_serial

from .crl_publication import publish_crl

logger = logging.getLogger(__name__)


async def revoke_certificate(
    agent, serial: str, reason: str, actor: str, peer: str | None = None
) -> dict:
    """Revoke by serial, then publish a CRL; ScbError if it cannot be revoked."""
    serial = _serial(serial)
    if not isinstance(reason, str):
        raise ScbError("bad_request", f"revocation reason {reason!r} is not text")
    reason = parse_reason(reason)
    at = time.time()

    def record(store) -> CertificateRow:
        row = _revocable(store, serial)
        store.revoke(serial, reason, at, actor)
        store.audit(
            "revoked",
            actor,
            at,
            peer=peer,
            names=row.names,
            serial=serial,
            detail=reason,
        )
        return row

    row = await agent.writer.call(record)
    logger.info(
        "revoked serial %s names %s reason %s by %s",
        serial,
        ",".join(row.names),
        reason,
        actor,
    )
    agent.events.publish(
        "revoked", serial=serial, names=row.names, reason=reason, actor=actor
    )

    try:
        crl_number = await publish_crl(agent)
    except OSError as exc:
        logger.exception("CRL publication after revoking %s failed", serial)
        raise ScbError(
            "internal",
            f"certificate {serial} is revoked, but the CRL could not be written "
            f"({exc}); the next scheduled CRL will list it",
        ) from exc
    return {
        "serial": serial,
        "names": row.names,
        "reason": reason,
        "revoked_at": at,
        "crl_number": crl_number,
    }


async def revoke_with_proof(
    agent, conversation, peer: str, request: RevocationRequested
) -> None:
    """A host's own revocation: it signs our nonce with the certificate's key."""
    reason = parse_reason(request.reason)
    if reason not in HOST_REASONS:
        raise ScbError(
            "bad_request",
            f"reason {reason} is for the CA's operator to give; a host may give "
            + ", ".join(HOST_REASONS),
        )
    serial = _serial(request.serial)
    row = await agent.writer.call(lambda store: _revocable(store, serial))

    nonce = new_nonce()
    conversation.send(conversation.protocol.send_nonce(nonce))
    proof = await conversation.next_event()
    assert isinstance(proof, ProofSent)  # the protocol allows nothing else here

    # The client signed the serial as it sent it, before we normalized it.
    key = x509.load_pem_x509_certificate(row.pem.encode()).public_key()
    if not verify_proof(key, nonce, request.serial, proof.signature):
        await _record_refusal(agent, peer, row)
        raise ScbError(
            "denied", f"the proof is not signed with the key of certificate {serial}"
        )

    await revoke_certificate(agent, serial, reason, "host", peer)
    conversation.send(conversation.protocol.send_revoked(serial))


def _serial(text) -> str:
    if not isinstance(text, str):
        raise ScbError("bad_request", f"serial {text!r} is not hexadecimal text")
    try:
        return parse_serial(text)
    except ValueError as exc:
        raise ScbError("bad_request", str(exc)) from exc


def _revocable(store, serial: str) -> CertificateRow:
    row = store.get_certificate(serial)
    if row is None:
        raise ScbError("bad_request", f"no certificate with serial {serial}")
    if row.revoked_at is not None:
        raise ScbError(
            "bad_request",
            f"certificate {serial} is already revoked ({row.reason}, "
            f"{dt.datetime.fromtimestamp(row.revoked_at, dt.UTC):%Y-%m-%d %H:%M} UTC)",
        )
    return row


async def _record_refusal(agent, peer: str, row: CertificateRow) -> None:
    at = time.time()
    await agent.writer.call(
        lambda store: store.audit(
            "refused",
            "host",
            at,
            peer=peer,
            names=row.names,
            serial=row.serial,
            detail="revoke: the proof did not match the certificate's key",
        )
    )
