"""Proof of key possession for self-revocation: what verifies and what does not."""

import pytest

from scb_core.keys import generate_key
from scb_core.proof import new_nonce, proof_message, sign_proof, verify_proof

SERIAL = "7F3A0B"


@pytest.fixture(scope="module", params=["ec-p256", "ec-p384", "rsa-2048"])
def key(request):
    return generate_key(request.param)


def test_signature_with_the_certificate_key_verifies(key):
    nonce = new_nonce()

    signature = sign_proof(key, nonce, SERIAL)

    assert verify_proof(key.public_key(), nonce, SERIAL, signature)


def test_signature_with_another_key_is_refused(key):
    nonce = new_nonce()

    signature = sign_proof(generate_key("ec-p256"), nonce, SERIAL)

    assert not verify_proof(key.public_key(), nonce, SERIAL, signature)


def test_signature_over_an_old_nonce_is_refused(key):
    signature = sign_proof(key, new_nonce(), SERIAL)

    assert not verify_proof(key.public_key(), new_nonce(), SERIAL, signature)


def test_signature_for_another_serial_is_refused(key):
    nonce = new_nonce()

    signature = sign_proof(key, nonce, SERIAL)

    assert not verify_proof(key.public_key(), nonce, "7F3A0C", signature)


def test_garbage_signature_is_refused_not_raised(key):
    assert not verify_proof(key.public_key(), new_nonce(), SERIAL, b"\x00" * 64)


def test_message_is_domain_separated():
    nonce = bytes(32)

    assert proof_message(nonce, "0A") == b"JASC/1 revoke\n" + nonce + b"0A"


def test_nonce_of_the_wrong_size_is_a_programming_error():
    with pytest.raises(ValueError):
        proof_message(b"short", SERIAL)
