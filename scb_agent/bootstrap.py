"""`scb-agent bootstrap`: fetch the CA root and pin it by fingerprint.

Nothing is saved unless the root matches the fingerprint the operator typed
and the agent's TLS certificate verifies against that root for the address
the host used to reach it.
"""

import asyncio
import datetime as dt
import hmac
import ipaddress

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from scb_core.authority_files import pem_of
from scb_core.ca import fingerprint, format_fingerprint
from scb_core.client_config import ClientConfig, save_client_config
from scb_core.config import parse_host_port
from scb_core.errors import ConfigError, ScbError
from scb_core.files import write_atomic
from scb_core.paths import Paths

from .client import fetch_root


def normalize_fingerprint(text: str) -> str:
    cleaned = text.strip().replace(":", "").replace(" ", "").lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError(
            f"--fingerprint {text!r} is not a SHA-256 fingerprint (64 hex digits)"
        )
    return cleaned


def run_bootstrap(args, paths: Paths) -> int:
    expected = normalize_fingerprint(args.fingerprint)
    try:
        server = parse_host_port(args.server)
    except ValueError as exc:
        raise ConfigError(f"--server: {exc}") from exc

    root_pem, presented = asyncio.run(fetch_root(server))
    root = _single_root(root_pem)
    got = fingerprint(root)
    if not hmac.compare_digest(got, expected):
        raise ScbError(
            "internal",
            "root fingerprint mismatch: expected "
            f"{format_fingerprint(expected)}, got {format_fingerprint(got)}; "
            "nothing saved",
        )
    _verify_presented(x509.load_der_x509_certificate(presented), root, server[0])

    try:
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        # The checked certificate, re-encoded: never text we did not verify.
        write_atomic(paths.pinned_root, pem_of(root))
        save_client_config(ClientConfig(args.server), paths.client_config)
    except OSError as exc:
        raise ConfigError(
            f"{paths.config_dir}: cannot save the pinned root: {exc.strerror}"
        ) from exc
    print(f"pinned root {root.subject.rfc4514_string()}")
    print(f"  fingerprint {format_fingerprint(got)}")
    print(f"  saved {paths.pinned_root} and {paths.client_config}")
    return 0


def _single_root(pem: str) -> x509.Certificate:
    """Exactly one certificate: a second one would be pinned unchecked."""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ScbError(
            "internal",
            f"the agent's root is not a PEM certificate ({exc}); nothing saved",
        ) from exc
    if len(certificates) != 1:
        raise ScbError(
            "internal",
            f"the agent sent {len(certificates)} certificates as its root, "
            "not one; nothing saved",
        )
    return certificates[0]


def _verify_presented(cert: x509.Certificate, root: x509.Certificate, host: str):
    """The TLS certificate the agent showed must chain to this very root."""
    try:
        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(subject)
    )
    try:
        verifier.verify(cert, [])
    except Exception as exc:
        raise ScbError(
            "internal",
            f"the agent's TLS certificate does not verify against that root "
            f"for {host}: {exc}; nothing saved",
        ) from exc
