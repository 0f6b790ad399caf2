"""`scb-agent certificates`: this host's lineages and what each needs.

Status is `revoked` when the CA's CRL lists the live serial (see crl_check),
else `expired`, `due` (renew would renew it now) or `valid`; `broken` when the
lineage's files cannot be read. An unreachable CRL makes the revocation check
`unknown`, never a failed listing.
"""

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509

from scb_core.paths import Paths
from scb_core.store import format_serial

from .crl_check import CrlCache, pinned_root
from .lineage import Lineage, all_lineages
from .renew import due_reason


@dataclass(frozen=True)
class LineageStatus:
    name: str
    names: list[str]
    serial: str
    not_after: str  # RFC 3339
    days_left: int
    status: str  # valid, due, expired, revoked, broken
    revocation: str  # good, revoked, unknown, no crl
    live: str
    problem: str = ""


def run_certificates(args, paths: Paths) -> int:
    base = Path(args.out) if args.out else paths.config_dir
    now = dt.datetime.now(dt.UTC)
    crls = CrlCache(pinned_root(paths))
    statuses = [lineage_status(lineage, now, crls) for lineage in all_lineages(base)]

    if args.json:
        print(json.dumps([asdict(status) for status in statuses], indent=2))
        return 0

    if not statuses:
        print(f"no lineages in {base / 'renewal'}")
    for status in statuses:
        _print_status(status)
    return 0


def lineage_status(lineage: Lineage, now: dt.datetime, crls: CrlCache):
    live = str(lineage.live_dir)
    try:
        cert = lineage.live_certificate()
        chain = lineage.live_chain()
    except (OSError, ValueError) as exc:
        return LineageStatus(lineage.name, [], "", "", 0, "broken", "", live, str(exc))

    revocation = crls.revocation(cert, chain[0] if chain else crls.root)
    not_after = cert.not_valid_after_utc
    return LineageStatus(
        name=lineage.name,
        names=_dns_names(cert),
        serial=format_serial(cert.serial_number),
        not_after=not_after.isoformat().replace("+00:00", "Z"),
        days_left=(not_after - now).days,
        status=_status(cert, now, revocation),
        revocation=revocation,
        live=live,
    )


def _dns_names(cert: x509.Certificate) -> list[str]:
    # A file put in live/ by hand may lack the SAN every SCB leaf carries.
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return san.value.get_values_for_type(x509.DNSName)


def _status(cert: x509.Certificate, now: dt.datetime, revocation: str) -> str:
    if revocation == "revoked":
        return "revoked"
    if now >= cert.not_valid_after_utc:
        return "expired"
    return "due" if due_reason(cert, now, days=0) else "valid"


def _print_status(status: LineageStatus) -> None:
    print(status.name)
    if status.status == "broken":
        print(f"  status     broken: {status.problem}")
        return
    print(f"  names      {' '.join(status.names)}")
    print(f"  serial     {status.serial}")
    print(f"  not after  {status.not_after} ({status.days_left} days left)")
    print(f"  status     {status.status} (CRL: {status.revocation})")
    print(f"  live       {status.live}")
