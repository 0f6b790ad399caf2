"""`scb-agent certificates`: this host's lineages and what each needs.

Status is `revoked` when the CA's CRL lists the live serial, else `expired`,
`due` (renew would renew it now) or `valid`; `broken` when the lineage's files
cannot be read. The CRL comes from the leaf's CRL distribution point over
HTTP with a short timeout; it counts only when the issuing CA signed it. An
unreachable or unusable CRL makes the revocation check `unknown`, never a
failed listing: a host must be able to see its certificates while the CA is
down.
"""

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509

from scb_core.paths import Paths
from scb_core.store import format_serial

from .lineage import Lineage, all_lineages
from .renew import due_reason

logger = logging.getLogger(__name__)

CRL_TIMEOUT = 5.0
MAX_CRL_BYTES = 16 * 1024 * 1024


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
    crls = CrlCache(_pinned_root(paths))
    statuses = [lineage_status(lineage, now, crls) for lineage in all_lineages(base)]

    if args.json:
        print(json.dumps([asdict(status) for status in statuses], indent=2))
        return 0

    if not statuses:
        print(f"no lineages in {base / 'renewal'}")
    for status in statuses:
        _print_status(status)
    return 0


def lineage_status(lineage: Lineage, now: dt.datetime, crls: "CrlCache"):
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


class CrlCache:
    """CRLs fetched once per listing, by URL: lineages share their CA's CRL."""

    def __init__(self, root: x509.Certificate | None):
        self.root = root
        self._fetched: dict[str, x509.CertificateRevocationList | None] = {}

    def revocation(self, cert: x509.Certificate, issuer) -> str:
        urls = crl_urls(cert)
        if not urls:
            return "no crl"
        if issuer is None:
            return "unknown"

        for url in urls:
            crl = self._crl(url)
            if crl is None:
                continue
            if crl.issuer != issuer.subject or not crl.is_signature_valid(
                issuer.public_key()
            ):
                logger.warning("CRL at %s is not signed by the issuing CA", url)
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            return "revoked" if revoked is not None else "good"
        return "unknown"

    def _crl(self, url: str) -> x509.CertificateRevocationList | None:
        if url not in self._fetched:
            self._fetched[url] = fetch_crl(url)
        return self._fetched[url]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The HTTP(S) URLs of the leaf's CRL distribution points."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points.value
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
        # A certificate must not make us read local files (file://) or worse.
        and name.value.lower().startswith(("http://", "https://"))
    ]


def fetch_crl(url: str) -> x509.CertificateRevocationList | None:
    """The CRL at `url` (DER or PEM), or None with a warning saying why."""
    try:
        with urllib.request.urlopen(url, timeout=CRL_TIMEOUT) as response:
            data = response.read(MAX_CRL_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("cannot fetch the CRL at %s: %s", url, exc)
        return None
    if len(data) > MAX_CRL_BYTES:
        logger.warning("CRL at %s is over %d bytes", url, MAX_CRL_BYTES)
        return None

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        logger.warning("CRL at %s cannot be parsed: %s", url, exc)
        return None


def _pinned_root(paths: Paths) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(paths.pinned_root.read_bytes())
    except (OSError, ValueError):
        return None


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
