"""sign_crl and revocation reasons: what relying parties will read in the CRL."""

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.crl import REASONS, Revocation, parse_reason, sign_crl
from scb_core.errors import ScbError
from tests.helpers import make_authority, require_openssl

NOW = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
REVOKED_AT = dt.datetime(2030, 4, 30, 8, 15, 42, tzinfo=dt.UTC)


def revocation(serial: str, reason: str = "keyCompromise") -> Revocation:
    return Revocation(serial, reason, REVOKED_AT.timestamp() + 0.25)


def sign(authority, revocations=(), number: int = 1) -> x509.CertificateRevocationList:
    return sign_crl(authority, revocations, number, NOW, NOW + WEEK)


@pytest.fixture(scope="module")
def authority():
    return make_authority()[0]


def test_crl_is_signed_by_the_issuing_ca(authority):
    crl = sign(authority, [revocation("0A1B")])

    assert crl.issuer == authority.issuer.subject
    assert crl.is_signature_valid(authority.issuer.public_key())
    assert not crl.is_signature_valid(authority.root.public_key())


def test_root_signs_the_crl_when_there_is_no_intermediate():
    authority, _ = make_authority(intermediate=False)

    crl = sign(authority)

    assert crl.issuer == authority.root.subject
    assert crl.is_signature_valid(authority.root.public_key())


def test_crl_names_the_issuing_key_by_its_key_identifier(authority):
    crl = sign(authority)

    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = authority.issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.value.digest


def test_crl_carries_its_number_and_update_times(authority):
    crl = sign(authority, number=41)

    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 41
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + WEEK


def test_each_entry_has_its_serial_and_revocation_date(authority):
    crl = sign(authority, [revocation("0A1B"), revocation("FF00112233445566")])

    entry = crl.get_revoked_certificate_by_serial_number(0xFF00112233445566)
    assert entry is not None
    assert entry.revocation_date_utc == REVOKED_AT
    assert crl.get_revoked_certificate_by_serial_number(0x0A1B) is not None
    assert crl.get_revoked_certificate_by_serial_number(0x0A1C) is None


@pytest.mark.parametrize("reason", sorted(set(REASONS) - {"unspecified"}))
def test_entry_carries_its_reason_code(authority, reason):
    crl = sign(authority, [revocation("0A1B", reason)])

    entry = crl.get_revoked_certificate_by_serial_number(0x0A1B)
    code = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert code == REASONS[reason]


def test_unspecified_reason_leaves_the_reason_code_out(authority):
    # RFC 5280 5.3.1: the reason code SHOULD be absent rather than unspecified.
    crl = sign(authority, [revocation("0A1B", "unspecified")])

    entry = crl.get_revoked_certificate_by_serial_number(0x0A1B)
    assert len(entry.extensions) == 0


def test_openssl_reads_the_crl_and_verifies_its_signature(authority, tmp_path):
    openssl = require_openssl()
    crl = sign(authority, [revocation("0A1B", "superseded")], number=7)
    (tmp_path / "crl.der").write_bytes(crl.public_bytes(Encoding.DER))
    (tmp_path / "issuer.pem").write_bytes(authority.issuer.public_bytes(Encoding.PEM))

    result = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", tmp_path / "crl.der"]
        + ["-CAfile", tmp_path / "issuer.pem", "-noout", "-text"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout
    assert "Serial Number: 0A1B" in result.stdout
    assert "Superseded" in result.stdout
    assert "X509v3 CRL Number: \n                7" in result.stdout


def test_many_entries_all_reach_the_crl(authority):
    revocations = [revocation(format(n, "X")) for n in range(1, 2001)]

    crl = sign(authority, revocations)

    assert len(crl) == 2000
    assert crl.is_signature_valid(authority.issuer.public_key())


@pytest.mark.parametrize(
    "typed, name",
    [
        ("keycompromise", "keyCompromise"),
        ("KEYCOMPROMISE", "keyCompromise"),
        ("cACompromise", "cACompromise"),
        (" Superseded ", "superseded"),
        ("cessationofoperation", "cessationOfOperation"),
        ("AffiliationChanged", "affiliationChanged"),
        ("privilegewithdrawn", "privilegeWithdrawn"),
        ("Unspecified", "unspecified"),
    ],
)
def test_reason_names_are_read_in_any_case(typed, name):
    assert parse_reason(typed) == name


@pytest.mark.parametrize(
    "typed", ["key compromise", "certificateHold", "removeFromCRL", "", "stolen"]
)
def test_unknown_reason_is_refused_by_name(typed):
    with pytest.raises(ScbError) as caught:
        parse_reason(typed)

    assert caught.value.code == "bad_request"
    assert repr(typed) in caught.value.message
    assert "keyCompromise" in caught.value.message
