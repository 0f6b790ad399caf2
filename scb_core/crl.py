"""Revocation reasons and the CRL the issuing CA signs over them.

Reasons are RFC 5280's names (section 5.3.1), read in any case and stored
in the RFC's spelling, so the wire, the store and the console use one word.
Only reasons that fit a permanent revocation of a server certificate are
taken: certificateHold would need an undo the store does not have,
removeFromCRL belongs to delta CRLs, and aACompromise to attribute
certificates.

Speed: a CRL with 100,000 entries must sign in well under a second or two.
cryptography's builder copies its entry list on every
`add_revoked_certificate`, which makes building one entry at a time
quadratic, so `sign_crl` hands the whole list to the builder's constructor
and shares one reason extension between all entries with that reason.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from .ca import Authority
from .errors import ScbError
from .keys import signature_hash

# RFC 5280 spelling -> the flag cryptography writes as the CRL entry's reason.
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}
_BY_LOWER = {name.lower(): name for name in REASONS}

# What a host may say about its own certificate. Whether the CA is
# compromised, or a privilege withdrawn, is for the operator to declare.
HOST_REASONS = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
)


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate, as the store keeps it."""

    serial: str  # upper-case hex, as format_serial writes it
    reason: str  # a key of REASONS
    revoked_at: float  # seconds since the epoch


def parse_reason(text: str) -> str:
    """The RFC 5280 spelling of a reason typed in any case."""
    name = _BY_LOWER.get(text.strip().lower())
    if name is None:
        raise ScbError(
            "bad_request",
            f"revocation reason {text!r} is not one of {', '.join(REASONS)}",
        )
    return name


def sign_crl(
    authority: Authority,
    revocations: Iterable[Revocation],
    crl_number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """A CRL for the issuing CA: every revoked serial with its date and reason."""
    issuer = authority.issuer
    entries = [_entry(revocation) for revocation in revocations]
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        revoked_certificates=entries,
    )
    builder = (
        builder
        # Lets relying parties find the key among the CA's, even after a rekey.
        .add_extension(_aki(issuer), critical=False)
        # Increases with every CRL, so a client can tell the newer of two.
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    key = authority.issuer_key
    return builder.sign(key, signature_hash(key))


def _entry(revocation: Revocation) -> x509.RevokedCertificate:
    return x509.RevokedCertificateBuilder(
        serial_number=int(revocation.serial, 16),
        revocation_date=dt.datetime.fromtimestamp(int(revocation.revoked_at), dt.UTC),
        extensions=_REASON_EXTENSIONS[revocation.reason],
    ).build()


def _reason_extensions(name: str) -> list[x509.Extension]:
    # RFC 5280 5.3.1: rather than the code unspecified, leave the reason out.
    if name == "unspecified":
        return []
    reason = x509.CRLReason(REASONS[name])
    return [x509.Extension(reason.oid, False, reason)]


_REASON_EXTENSIONS = {name: _reason_extensions(name) for name in REASONS}


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
