"""`scb-agent revoke NAME_OR_CERT`: a host takes back its own certificate.

No operator is needed: the agent sends a nonce, we sign it with the
certificate's private key, and the agent checks the signature against the
certificate it issued (see scb_agent.revocation). So this runs where the key
is: on the host, with read access to privkey.pem.
"""

import asyncio
from pathlib import Path

from cryptography import x509

from scb_core.client_config import load_client_config
from scb_core.config import parse_host_port
from scb_core.crl import parse_reason
from scb_core.errors import ConfigError, ScbError
from scb_core.keys import PrivateKey, load_private_key
from scb_core.paths import Paths
from scb_core.proof import sign_proof
from scb_core.protocol import CertificateRevoked, NonceIssued
from scb_core.store import format_serial

from .client import CONNECT_TIMEOUT, connect, read_pinned_root
from .lineage import Lineage


def run_revoke(args, paths: Paths) -> int:
    try:
        reason = _reason(args.reason)
        server = parse_host_port(
            args.server or load_client_config(paths.client_config).server
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    cert_path, key_path = _files(args.target, args.key, paths.config_dir)
    cert, key = _load_pair(cert_path, key_path)
    root_pem = read_pinned_root(paths)

    serial = format_serial(cert.serial_number)
    revoked = asyncio.run(revoke_own_certificate(server, root_pem, serial, reason, key))
    print(f"revoked serial {revoked.serial} ({reason}); {cert_path} is no longer valid")
    return 0


async def revoke_own_certificate(
    server: tuple[str, int], root_pem: str, serial: str, reason: str, key: PrivateKey
) -> CertificateRevoked:
    """Ask for the revocation, and prove with `key` that we may."""
    conversation = await connect(server, root_pem)
    try:
        conversation.send(conversation.protocol.send_revoke(serial, reason))
        challenge = await conversation.next_event(CONNECT_TIMEOUT)
        assert isinstance(challenge, NonceIssued)

        signature = sign_proof(key, challenge.nonce, serial)
        conversation.send(conversation.protocol.send_proof(signature))
        revoked = await conversation.next_event()
        assert isinstance(revoked, CertificateRevoked)
        return revoked
    finally:
        await conversation.close()


def _reason(text: str) -> str:
    try:
        return parse_reason(text)
    except ScbError as exc:
        raise ValueError(f"--reason: {exc.message}") from exc


def _files(target: str, key: str | None, config_dir: Path) -> tuple[Path, Path]:
    """A certificate file and its key, or a lineage's live ones."""
    given = Path(target)
    if given.is_file():
        return given, Path(key) if key else given.parent / "privkey.pem"

    live = Lineage(config_dir, target).live_dir
    if (live / "cert.pem").is_file():
        return live / "cert.pem", Path(key) if key else live / "privkey.pem"
    raise ConfigError(
        f"{target!r} is neither a certificate file nor a lineage in {live.parent}"
    )


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the certificate {cert_path}: {exc}") from exc
    try:
        key = load_private_key(key_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the key {key_path} (give it with --key): {exc}"
        ) from exc

    if key.public_key() != cert.public_key():
        raise ConfigError(f"{key_path} is not the key of {cert_path}")
    return cert, key
