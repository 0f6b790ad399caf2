"""`scb-agent request NAME...`: key, CSR, challenge, verified files, hooks.

The private key is generated here and never leaves the host. Nothing is
written until the returned chain verifies against the pinned root for every
name and carries this key. `renew` obtains its certificates through the same
`issue_lineage`.
"""

import asyncio
import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from scb_core.client_config import load_client_config
from scb_core.config import parse_host_port
from scb_core.csr import build_csr, parse_subject
from scb_core.errors import ConfigError, ScbError
from scb_core.keys import (
    PrivateKey,
    describe_key,
    generate_key,
    load_private_key,
    private_key_pem,
    thumbprint,
)
from scb_core.paths import Paths
from scb_core.policy import normalize_name

from .cli import DEFAULT_CHALLENGE_PORT, EXIT_FAILED
from .client import obtain_certificate, read_pinned_root, verify_chain
from .hooks import checked_timeout, run_deploy_hooks
from .lineage import Lineage, RenewalSettings, group_id, make_dirs


@dataclass(frozen=True)
class Issuance:
    serial: str
    not_after: dt.datetime
    version: int | None  # None: a dry run, nothing was kept


def run_request(args, paths: Paths) -> int:
    names = [_checked_name(name) for name in args.names]
    hook_timeout = checked_timeout(args.hook_timeout)
    port = args.challenge_port  # 0 is a typo to refuse, not "the default"
    settings = RenewalSettings(
        names=names,
        server=args.server or load_client_config(paths.client_config).server,
        key_type=args.key_type,
        challenge_port=DEFAULT_CHALLENGE_PORT if port is None else port,
        challenge_bind=args.challenge_bind or "",
        validity_days=_checked_validity(args.validity_days),
        subject=args.subject or "",
        deploy_hook=args.deploy_hook or "",
        reuse_key=args.reuse_key,
        key_group=args.key_group or "",
    )
    base = _writable_dir(Path(args.out) if args.out else paths.config_dir)
    lineage = Lineage(base, names[0])

    issuance = issue_lineage(lineage, settings, paths, say=_say)
    _print_summary(lineage, issuance)

    failures = run_deploy_hooks(lineage, settings, hook_timeout)
    for failure in failures:
        print(f"scb-agent request: {failure}", file=sys.stderr)
    return EXIT_FAILED if failures else 0


def issue_lineage(
    lineage: Lineage,
    settings: RenewalSettings,
    paths: Paths,
    say,
    keep: bool = True,
    fresh_key: bool = False,
) -> Issuance:
    """Obtain a certificate for `settings` and make it the lineage's live one.

    With `keep` false (a dry run) the whole protocol runs and the chain is
    verified, but nothing is written. `fresh_key` overrides `reuse_key`.
    """
    root_pem = read_pinned_root(paths)
    try:
        server = parse_host_port(settings.server)
        subject = parse_subject(settings.subject)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    _check_port(settings.challenge_port)
    if settings.key_group:
        group_id(settings.key_group)  # a missing group must fail before the CA signs

    key = _lineage_key(lineage, settings, fresh_key)
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
    not_after = chain[0].not_valid_after_utc
    if not keep:
        return Issuance(issued.serial, not_after, None)

    settings.version = lineage.write_version(
        private_key_pem(key), chain, settings.key_group
    )
    lineage.save_settings(settings)
    return Issuance(issued.serial, not_after, settings.version)


def _lineage_key(
    lineage: Lineage, settings: RenewalSettings, fresh: bool
) -> PrivateKey:
    """The live key when the lineage asks to keep it, else a fresh one."""
    if fresh or not (settings.reuse_key and lineage.current_version()):
        return generate_key(settings.key_type)

    try:
        key = load_private_key(lineage.live_key_pem())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{lineage.live_dir}/privkey.pem: {exc}") from exc
    if describe_key(key.public_key()) != settings.key_type:
        raise ConfigError(
            f"{lineage.renewal_file}: key_type = {settings.key_type!r}, but "
            "reuse_key = true and the live key is another type"
        )
    return key


def _checked_name(name: str) -> str:
    try:
        return normalize_name(name)
    except ScbError as exc:
        raise ConfigError(f"name {name!r}: {exc.message}") from exc


def _checked_validity(days: int | None) -> int:
    """0 stands for the CA's default in the renewal file; a typed 0 is a mistake."""
    if days is None:
        return 0
    if days < 1:
        raise ConfigError(f"--validity-days {days} must be 1 or more")
    return days


def _writable_dir(base: Path) -> Path:
    """Find out now, not after the CA has signed, that the files have a home."""
    try:
        make_dirs(base)
    except OSError as exc:
        raise ConfigError(
            f"{base}: cannot hold the certificate files: {exc.strerror}"
        ) from exc
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{base}: cannot hold the certificate files: not writable")
    return base


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"--challenge-port {port} must be 1 to 65535")


def _say(line: str) -> None:
    print(line, flush=True)


def _print_summary(lineage: Lineage, issuance: Issuance) -> None:
    print(f"issued serial {issuance.serial} for {', '.join(lineage.settings.names)}")
    print(f"  not after   {issuance.not_after:%Y-%m-%d %H:%M} UTC")
    print(f"  certificate {lineage.live_dir / 'fullchain.pem'}")
    print(f"  key         {lineage.live_dir / 'privkey.pem'}")
    sys.stdout.flush()
