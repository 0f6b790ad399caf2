"""The leaf profile, proven with cryptography's verifier and openssl."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from scb_core.ca import issue_leaf
from scb_core.keys import generate_key
from scb_core.policy import Policy, check_csr

from .helpers import (
    assert_is_leaf,
    make_authority,
    make_csr,
    verify_with_cryptography,
    verify_with_openssl,
)

POLICY = Policy(allowed_domains=("home.arpa",))
NAMES = ["svc.home.arpa", "www.svc.home.arpa"]


def issue(authority, key_type="ec-p256", names=NAMES, subject=()):
    csr, _ = make_csr(names, generate_key(key_type), subject)
    return issue_leaf(authority, check_csr(csr, None, POLICY))


@pytest.mark.parametrize("intermediate", [True, False], ids=["intermediate", "root"])
@pytest.mark.parametrize(
    "key_type", ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
)
def test_leaf_of_every_key_type_verifies(tmp_path, key_type, intermediate):
    authority, _ = make_authority(intermediate=intermediate)

    leaf = issue(authority, key_type)

    assert_is_leaf(leaf, NAMES)
    for name in NAMES:
        verify_with_cryptography(leaf, authority.chain, authority.root, name)
    verify_with_openssl(tmp_path, leaf, authority.chain, authority.root)


@pytest.mark.parametrize("ca_key_type", ["ec-p384", "rsa-3072"])
def test_leaf_from_ca_of_other_key_types_verifies(tmp_path, ca_key_type):
    authority, _ = make_authority(ca_key_type)

    leaf = issue(authority)

    verify_with_cryptography(leaf, authority.chain, authority.root, NAMES[0])
    verify_with_openssl(tmp_path, leaf, authority.chain, authority.root)


def test_rsa_leaf_has_key_encipherment_and_ec_leaf_does_not():
    authority, _ = make_authority()

    rsa_usage = issue(authority, "rsa-2048").extensions.get_extension_for_class(
        x509.KeyUsage
    )
    ec_usage = issue(authority, "ec-p256").extensions.get_extension_for_class(
        x509.KeyUsage
    )

    assert rsa_usage.value.key_encipherment
    assert not ec_usage.value.key_encipherment


def test_serials_are_unique_and_at_least_64_random_bits():
    authority, _ = make_authority()
    csr, _ = make_csr(NAMES)
    spec = check_csr(csr, None, POLICY)

    serials = {issue_leaf(authority, spec).serial_number for _ in range(200)}

    assert len(serials) == 200
    assert min(s.bit_length() for s in serials) >= 64


def test_subject_with_common_name_keeps_san_non_critical(tmp_path):
    authority, _ = make_authority()
    subject = [(NameOID.COMMON_NAME, NAMES[0]), (NameOID.ORGANIZATION_NAME, "Lab")]

    leaf = issue(authority, subject=subject)

    assert_is_leaf(leaf, NAMES)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    verify_with_openssl(tmp_path, leaf, authority.chain, authority.root)


def test_name_constraints_stop_the_intermediate_signing_outside_names():
    authority, _ = make_authority(domains=("lab.internal",))

    leaf = issue(authority)  # policy allows home.arpa, the CA only lab.internal

    with pytest.raises(Exception, match="(?i)constraint|name"):
        verify_with_cryptography(leaf, authority.chain, authority.root, NAMES[0])


def test_rsa_keys_are_generated_at_the_named_size():
    key = generate_key("rsa-3072")

    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072
