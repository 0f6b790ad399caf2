"""`scb-agent request NAME...`: key, CSR, challenge, verified files.

The private key is generated here and never leaves the host. Nothing is
written until the returned chain verifies against the pinned root for every
name and carries this key.
"""

import asyncio
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509

from scb_core.client_config import load_client_config
from scb_core.config import parse_host_port
from scb_core.csr import build_csr, parse_subject
from scb_core.errors import ConfigError, ScbError
from scb_core.keys import generate_key, private_key_pem, thumbprint
from scb_core.paths import Paths
from scb_core.policy import normalize_name

from .cli import DEFAULT_CHALLENGE_PORT
from .client import obtain_certificate, verify_chain
from .lineage import Lineage, RenewalSettings


def run_request(args, paths: Paths) -> int:
    names = [_checked_name(name) for name in args.names]
    settings = RenewalSettings(
        names=names,
        server=args.server or load_client_config(paths.client_config).server,
        key_type=args.key_type,
        challenge_port=args.challenge_port or DEFAULT_CHALLENGE_PORT,
        challenge_bind=args.challenge_bind or "",
        validity_days=args.validity_days or 0,
        subject=args.subject or "",
        deploy_hook=getattr(args, "deploy_hook", None) or "",
        key_group=getattr(args, "key_group", None) or "",
    )
    base = Path(args.out) if args.out else paths.config_dir
    lineage = Lineage(base, names[0])

    outcome = issue_lineage(lineage, settings, paths, say=_say)
    _print_summary(lineage, outcome)
    return 0


def issue_lineage(lineage: Lineage, settings: RenewalSettings, paths: Paths, say):
    """Obtain a certificate for `settings` and make it the lineage's live one."""
    root_pem = _pinned_root(paths)
    try:
        server = parse_host_port(settings.server)
        subject = parse_subject(settings.subject)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    _check_port(settings.challenge_port)

    key = generate_key(settings.key_type)
    csr = build_csr(settings.names, key, subject)
    say(f"requesting {', '.join(settings.names)} from {settings.server}")
    issued = asyncio.run(
        obtain_certificate(
            server,
            root_pem,
            csr,
            thumbprint(key.public_key()),
            settings.challenge_port,
            settings.challenge_bind or None,
            settings.validity_days or None,
            on_stage=lambda stage: say(f"  {stage}"),
        )
    )

    root = x509.load_pem_x509_certificate(root_pem.encode())
    chain = verify_chain(issued.chain_pem, root, settings.names, key.public_key())
    settings.version = lineage.write_version(
        private_key_pem(key), chain, settings.key_group
    )
    lineage.save_settings(settings)
    return issued


def _pinned_root(paths: Paths) -> str:
    try:
        return paths.pinned_root.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no pinned root at {paths.pinned_root}: run `scb-agent bootstrap` first"
        ) from exc


def _checked_name(name: str) -> str:
    try:
        return normalize_name(name)
    except ScbError as exc:
        raise ConfigError(f"name {name!r}: {exc.message}") from exc


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"--challenge-port {port} must be 1 to 65535")


def _say(line: str) -> None:
    print(line, flush=True)


def _print_summary(lineage: Lineage, issued) -> None:
    not_after = dt.datetime.fromisoformat(issued.not_after.replace("Z", "+00:00"))
    print(f"issued serial {issued.serial} for {', '.join(lineage.settings.names)}")
    print(f"  not after   {not_after:%Y-%m-%d %H:%M} UTC")
    print(f"  certificate {lineage.live_dir / 'fullchain.pem'}")
    print(f"  key         {lineage.live_dir / 'privkey.pem'}")
    sys.stdout.flush()
