"""`scb-agent renew [NAME...]`: renew the lineages that are due, run hooks.

A lineage is due when less than a third of its certificate's lifetime is
left (certbot's 30 days of 90), when it expires within `--days N`, or when
its live certificate is missing or unreadable, or when the CA's CRL lists it
as revoked (then with a new key, even for `reuse_key`). `--force` renews
regardless.

`--dry-run` proves that renewal works before it is needed: every selected
lineage, due or not, goes through the whole protocol and the returned chain
is verified, then the result is dropped. Nothing is written and no hook runs.
The agent still records the certificate it signed; its key is discarded.

Lineages are renewed one after another, each on its own challenge port. One
that fails is reported and the rest still renew; the exit status is 1 when
any lineage or deploy hook failed, so a timer's run shows up as failed.
"""

import datetime as dt
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from scb_core.errors import ConfigError, ScbError
from scb_core.paths import Paths

from .cli import EXIT_FAILED
from .crl_check import CrlCache, pinned_root
from .hooks import DEFAULT_TIMEOUT, HookFailure, checked_timeout, run_deploy_hooks
from .lineage import Lineage, all_lineages
from .request_cmd import Issuance, issue_lineage

logger = logging.getLogger(__name__)

# A revoked certificate is replaced at once, and never with its old key.
REVOKED = "revoked: the CA's CRL lists it"


@dataclass(frozen=True)
class RenewOptions:
    days: int = 0  # also renew what expires within this many days
    force: bool = False
    dry_run: bool = False
    hook_timeout: float = DEFAULT_TIMEOUT


@dataclass
class Outcome:
    name: str
    result: str  # renewed, not due, dry run ok, failed
    detail: str
    hook_failures: list[HookFailure] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.result == "failed" or bool(self.hook_failures)


def run_renew(args, paths: Paths) -> int:
    if args.days < 0:
        raise ConfigError(f"--days {args.days}: must be 0 or more")
    options = RenewOptions(
        args.days, args.force, args.dry_run, checked_timeout(args.hook_timeout)
    )
    base = Path(args.out) if args.out else paths.config_dir
    lineages = selected_lineages(base, args.names)
    if not lineages:
        print(f"no lineages in {base / 'renewal'}")
        return 0

    now = dt.datetime.now(dt.UTC)
    crls = CrlCache(pinned_root(paths))
    outcomes = [
        renew_lineage(lineage, paths, now, options, crls) for lineage in lineages
    ]
    _print_summary(outcomes)

    failed = sum(outcome.failed for outcome in outcomes)
    if failed:
        print(f"scb-agent renew: {failed} of {len(outcomes)} failed", file=sys.stderr)
        return EXIT_FAILED
    return 0


def selected_lineages(base: Path, names: list[str]) -> list[Lineage]:
    lineages = all_lineages(base)
    if not names:
        return lineages

    known = {lineage.name: lineage for lineage in lineages}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"no lineage {unknown[0]!r} in {base / 'renewal'}; "
            f"known: {', '.join(known) or 'none'}"
        )
    return [known[name] for name in names]


def due_reason(cert: x509.Certificate, now: dt.datetime, days: int) -> str:
    """Why `cert` should be renewed now, or "" when it can wait."""
    left = cert.not_valid_after_utc - now
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    if left <= dt.timedelta(0):
        return "expired"
    if left < lifetime / 3:
        return "less than a third of its lifetime left"
    if left < dt.timedelta(days=days):
        return f"expires within {days} days"
    return ""


def renew_lineage(
    lineage: Lineage,
    paths: Paths,
    now: dt.datetime,
    options: RenewOptions,
    crls: CrlCache,
) -> Outcome:
    """Renew one lineage if it is due; never raises for the lineage's faults."""
    try:
        settings = lineage.load_settings()
        reason, cert = _reason(lineage, now, options.days, crls)
        if not (reason or options.force or options.dry_run):
            left = cert.not_valid_after_utc - now
            return Outcome(lineage.name, "not due", f"{left.days} days left")

        why = reason or ("dry run" if options.dry_run else "forced")
        print(f"{lineage.name}: renewing ({why})", flush=True)
        keep, fresh_key = not options.dry_run, reason == REVOKED
        issuance = issue_lineage(lineage, settings, paths, _say, keep, fresh_key)
    except ScbError as exc:
        return Outcome(lineage.name, "failed", str(exc))
    except OSError as exc:
        return Outcome(lineage.name, "failed", f"{exc.filename or ''}: {exc}")
    except Exception as exc:
        # A bug must not keep every later lineage from renewing on a timer.
        logger.exception("renewing %s failed unexpectedly", lineage.name)
        return Outcome(lineage.name, "failed", f"internal error: {exc!r}")

    if options.dry_run:
        due = f"due: {reason}" if reason else "not due yet"
        return Outcome(lineage.name, "dry run ok", f"{_issued(issuance)}; {due}")

    failures = run_deploy_hooks(lineage, settings, options.hook_timeout)
    detail = f"version {issuance.version}, {_issued(issuance)}"
    return Outcome(lineage.name, "renewed", detail, failures)


def _reason(
    lineage: Lineage, now: dt.datetime, days: int, crls: CrlCache
) -> tuple[str, x509.Certificate | None]:
    """Why the lineage is due ("" when it is not), and its live certificate."""
    try:
        cert = lineage.live_certificate()
        chain = lineage.live_chain()
    except FileNotFoundError as exc:
        return f"no live {Path(exc.filename or 'cert.pem').name}", None
    except (OSError, ValueError) as exc:
        # Renewing replaces the unreadable file, which is what it needs.
        return f"live certificate cannot be read ({exc})", None

    if crls.revocation(cert, chain[0] if chain else crls.root) == "revoked":
        return REVOKED, cert
    return due_reason(cert, now, days), cert


def _issued(issuance: Issuance) -> str:
    return (
        f"serial {issuance.serial}, not after {issuance.not_after:%Y-%m-%d %H:%M} UTC"
    )


def _say(line: str) -> None:
    print(f"  {line.strip()}", flush=True)


def _print_summary(outcomes: list[Outcome]) -> None:
    width = max(len(outcome.name) for outcome in outcomes)
    print("summary:")
    for outcome in outcomes:
        print(f"  {outcome.name:{width}}  {outcome.result}: {outcome.detail}")
        for failure in outcome.hook_failures:
            print(f"  {'':{width}}  {failure}")
    sys.stdout.flush()
