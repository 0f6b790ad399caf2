"""The certificate authority: one builder chain per kind of certificate.

Root and issuing intermediate are created once by `scb-agent init`; leaves are
issued from checked requests; the agent's own TLS certificate is a leaf of the
root, so the CA key itself is never a TLS identity.
"""

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .keys import PrivateKey, PublicKey, signature_hash

ROOT_DAYS = 3650
INTERMEDIATE_DAYS = 1825
SERVER_DAYS = 825
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """What the certifier signs with: the issuing CA, and the root above it."""

    root: x509.Certificate
    issuer_key: PrivateKey
    # Issuing CAs from the signer up to (not including) the root; empty when
    # the root signs leaves itself.
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def issuer(self) -> x509.Certificate:
        return self.chain[0] if self.chain else self.root


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def format_fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def create_root(name: str, key: PrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = now() - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
        .sign(key, signature_hash(key))
    )


def create_intermediate(
    root: x509.Certificate,
    root_key: PrivateKey,
    name: str,
    key: PrivateKey,
    permitted_domains: list[str] | None,
) -> x509.Certificate:
    """An issuing CA below the root; optionally limited to the allowed domains."""
    start = now() - BACKDATE
    not_after = min(
        start + dt.timedelta(days=INTERMEDIATE_DAYS), root.not_valid_after_utc
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        # path_length 0: the issuing CA signs leaves only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
        .add_extension(_aki(root), critical=False)
    )
    if permitted_domains:
        # A stolen issuing key can then only mint names inside the lab's domains.
        subtrees = [x509.DNSName(domain) for domain in permitted_domains]
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None),
            critical=True,
        )
    return builder.sign(root_key, signature_hash(root_key))


@dataclass(frozen=True)
class LeafSpec:
    """What a checked request asks to be signed."""

    names: list[str]
    public_key: PublicKey
    subject: x509.Name
    validity_days: int
    client_auth: bool = False


def issue_leaf(
    authority: Authority, spec: LeafSpec, crl_url: str | None = None
) -> x509.Certificate:
    """Sign a server certificate to DESIGN's leaf profile."""
    start = now() - BACKDATE
    not_after = min(
        start + BACKDATE + dt.timedelta(days=spec.validity_days),
        authority.issuer.not_valid_after_utc,
    )
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if spec.client_auth:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)

    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(authority.issuer.subject)
        .public_key(spec.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        # RFC 5280: with an empty subject the SAN carries the identity and is critical.
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in spec.names]),
            critical=len(spec.subject) == 0,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(spec.public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_ski(spec.public_key), critical=False)
        .add_extension(_aki(authority.issuer), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(
            _crl_distribution_point(crl_url), critical=False
        )
    return builder.sign(authority.issuer_key, signature_hash(authority.issuer_key))


def issue_server_certificate(
    root: x509.Certificate, root_key: PrivateKey, names: list[str], key: PrivateKey
) -> x509.Certificate:
    """The agent's own TLS identity: DNS names and IP addresses, signed by the root."""
    start = now() - BACKDATE
    not_after = min(start + dt.timedelta(days=SERVER_DAYS), root.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key.public_key()), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(_ski(key.public_key()), critical=False)
        .add_extension(_aki(root), critical=False)
        .sign(root_key, signature_hash(root_key))
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,  # signs certificates below it
        crl_sign=True,  # signs the CRL that revokes them
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(key: PublicKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,  # (EC)DHE handshakes sign with the key
        content_commitment=False,
        # Only RSA keys can carry a key transport (TLS 1.2 RSA key exchange).
        key_encipherment=isinstance(key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ski(key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _crl_distribution_point(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
