"""Key types SCB knows, by the names used on the command line and in config."""

import base64
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import ScbError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
CURVES = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1}
RSA_MIN_BITS, RSA_MAX_BITS = 2048, 4096


def generate_key(key_type: str) -> PrivateKey:
    """A fresh private key of one of KEY_TYPES."""
    if key_type in CURVES:
        return ec.generate_private_key(CURVES[key_type]())

    if key_type.startswith("rsa-") and key_type in KEY_TYPES:
        return rsa.generate_private_key(65537, int(key_type.removeprefix("rsa-")))

    raise ValueError(
        f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}"
    )


def describe_key(key: PublicKey) -> str:
    """Name an acceptable public key ("ec-p256", "rsa-3072"), or refuse it."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        for name, curve in CURVES.items():
            if isinstance(key.curve, curve):
                return name
        raise ScbError(
            "policy_denied",
            f"EC curve {key.curve.name} is not allowed; use P-256 or P-384",
        )

    if isinstance(key, rsa.RSAPublicKey):
        if not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            raise ScbError(
                "policy_denied",
                f"RSA key of {key.key_size} bits is not allowed; "
                f"use {RSA_MIN_BITS} to {RSA_MAX_BITS} bits",
            )
        return f"rsa-{key.key_size}"

    raise ScbError(
        "policy_denied",
        f"key type {type(key).__name__} is not allowed; use ECDSA or RSA",
    )


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-384 for P-384 keys, whose strength SHA-256 would undercut; else SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM key; a missing or wrong passphrase says so, without echoing it."""
    try:
        key = serialization.load_pem_private_key(pem, passphrase)
    except TypeError as exc:
        raise ValueError("the key is encrypted: give its passphrase file") from exc
    except ValueError as exc:
        raise ValueError(f"cannot load the key ({exc}); wrong passphrase?") from exc

    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"key type {type(key).__name__} is not supported")
    return key


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def thumbprint(key: PublicKey) -> str:
    """base64url (no padding) SHA-256 of the DER SubjectPublicKeyInfo."""
    digest = hashlib.sha256(spki_der(key)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
