"""Building the host's CSR: names in subjectAltName, optional subject fields."""

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .keys import PrivateKey, signature_hash
from .policy import SUBJECT_FIELDS


def parse_subject(text: str | None) -> list[tuple[str, str]]:
    """ "O=Lab,OU=Infra,C=DE" as pairs; ValueError naming the bad part."""
    if not text:
        return []

    pairs = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or key not in SUBJECT_FIELDS or not value.strip():
            fields = ", ".join(SUBJECT_FIELDS)
            raise ValueError(f"subject part {part!r} must be FIELD=VALUE with {fields}")
        pairs.append((key, value.strip()))
    return pairs


def build_csr(
    names: list[str], key: PrivateKey, subject: list[tuple[str, str]] = ()
) -> str:
    name = x509.Name(
        [x509.NameAttribute(SUBJECT_FIELDS[k][0], value) for k, value in subject]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        )
        .sign(key, signature_hash(key))
    )
    return csr.public_bytes(Encoding.PEM).decode()
