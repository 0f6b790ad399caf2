"""Proof that a host holds a certificate's private key, for self-revocation.

The certifier sends a fresh random nonce; the host signs

    b"JASC/1 revoke\\n" + nonce + serial

with the certificate's key. The prefix keeps the signature from meaning
anything in another protocol that uses the same key (a TLS handshake signs
other prefixes), the nonce makes it useless a second time, and the serial
ties it to the one certificate being revoked. ECDSA signs with the hash that
matches the curve; RSA uses PSS, the padding with a security proof.
"""

import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .keys import PrivateKey, PublicKey

NONCE_BYTES = 32
_CONTEXT = b"JASC/1 revoke\n"


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof_message(nonce: bytes, serial: str) -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce is {NONCE_BYTES} bytes, not {len(nonce)}")
    return _CONTEXT + nonce + serial.encode("ascii")


def sign_proof(key: PrivateKey, nonce: bytes, serial: str) -> bytes:
    message = proof_message(nonce, serial)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(_hash_for(key.curve)))
    return key.sign(message, _pss(), hashes.SHA256())


def verify_proof(key: PublicKey, nonce: bytes, serial: str, signature: bytes) -> bool:
    message = proof_message(nonce, serial)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(_hash_for(key.curve)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, _pss(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _hash_for(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    # P-384's strength would be undercut by SHA-256, as in keys.signature_hash.
    return hashes.SHA384() if curve.key_size >= 384 else hashes.SHA256()


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
