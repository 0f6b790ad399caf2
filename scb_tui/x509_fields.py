"""A certificate's X.509 fields as (label, value) rows a person can read."""

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from scb_core.ca import format_fingerprint
from scb_core.store import format_serial


def certificate_fields(pem: str) -> list[tuple[str, str]]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    rows = [
        ("Subject", cert.subject.rfc4514_string() or "(empty)"),
        ("Issuer", cert.issuer.rfc4514_string()),
        ("Serial", format_fingerprint(format_serial(cert.serial_number))),
        ("Not before", cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Not after", cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Public key", _key(cert.public_key())),
        ("Signature", cert.signature_algorithm_oid._name),
        ("SHA-256", format_fingerprint(cert.fingerprint(hashes.SHA256()).hex())),
    ]
    rows += [_extension(ext) for ext in cert.extensions]
    return rows


def _key(key) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name} ({key.key_size} bits)"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def _extension(ext: x509.Extension) -> tuple[str, str]:
    value = ext.value
    label = ext.oid._name + (" (critical)" if ext.critical else "")
    if isinstance(value, x509.SubjectAlternativeName):
        text = ", ".join(str(v) for v in value.get_values_for_type(x509.DNSName))
        addresses = value.get_values_for_type(x509.IPAddress)
        text += "".join(f", IP {a}" for a in addresses)
    elif isinstance(value, x509.BasicConstraints):
        text = f"CA:{'TRUE' if value.ca else 'FALSE'}"
        if value.path_length is not None:
            text += f", pathlen:{value.path_length}"
    elif isinstance(value, x509.KeyUsage):
        text = ", ".join(_key_usages(value))
    elif isinstance(value, x509.ExtendedKeyUsage):
        text = ", ".join(oid._name for oid in value)
    elif isinstance(value, x509.SubjectKeyIdentifier):
        text = format_fingerprint(value.digest.hex())
    elif isinstance(value, x509.AuthorityKeyIdentifier):
        text = format_fingerprint((value.key_identifier or b"").hex())
    elif isinstance(value, x509.CRLDistributionPoints):
        text = ", ".join(
            name.value for point in value for name in point.full_name or []
        )
    else:
        text = str(value)
    return label, text


def _key_usages(usage: x509.KeyUsage) -> list[str]:
    flags = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    found = [flag for flag in flags if getattr(usage, flag)]
    if usage.key_agreement:
        found += [f for f in ("encipher_only", "decipher_only") if getattr(usage, f)]
    return found
