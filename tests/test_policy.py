"""Policy refusals: each carries its code and names the bad value."""

import ipaddress

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from scb_core.errors import ScbError
from scb_core.policy import (
    Policy,
    check_address,
    check_challenge_port,
    check_csr,
    normalize_name,
    requested_names,
)

from .helpers import make_csr

POLICY = Policy(allowed_domains=("home.arpa", "lab.internal"))


def check(names, key=None, subject=(), validity=None, policy=POLICY):
    csr, _ = make_csr(names, key, subject)
    return check_csr(csr, validity, policy)


def assert_refused(code: str, fragment: str, call, *args, **kwargs):
    with pytest.raises(ScbError) as info:
        call(*args, **kwargs)
    assert info.value.code == code
    assert fragment in info.value.message


def test_names_are_lower_cased_and_deduplicated():
    spec = check(["SVC.Home.Arpa", "svc.home.arpa", "b.lab.internal"])

    assert spec.names == ["svc.home.arpa", "b.lab.internal"]


def test_unicode_name_becomes_its_a_label():
    assert normalize_name("bücher.home.arpa") == "xn--bcher-kva.home.arpa"


def test_wildcard_is_refused():
    assert_refused("policy_denied", "*.home.arpa", check, ["*.home.arpa"])


def test_ip_literal_is_refused():
    assert_refused("policy_denied", "10.0.0.1", normalize_name, "10.0.0.1")


def test_invalid_idna_label_is_refused():
    assert_refused("policy_denied", "xn--zz", normalize_name, "xn--zz.home.arpa")


def test_label_with_underscore_is_refused():
    assert_refused("policy_denied", "a_b.home.arpa", normalize_name, "a_b.home.arpa")


def test_name_outside_allowed_domains_is_refused():
    assert_refused("policy_denied", "evil.example.com", check, ["evil.example.com"])


def test_suffix_must_match_whole_labels():
    assert_refused("policy_denied", "nothome.arpa", check, ["nothome.arpa"])


def test_more_than_max_names_is_refused():
    names = [f"h{i}.home.arpa" for i in range(101)]

    assert_refused("policy_denied", "101 names", check, names)


def test_csr_without_names_is_bad_csr():
    assert_refused("bad_csr", "subjectAltName", check, [])


def test_rsa_1024_is_refused():
    key = rsa.generate_private_key(65537, 1024)

    assert_refused("policy_denied", "1024 bits", check, ["a.home.arpa"], key)


def test_other_curve_is_refused():
    key = ec.generate_private_key(ec.SECP521R1())

    assert_refused("policy_denied", "secp521r1", check, ["a.home.arpa"], key)


def test_validity_over_maximum_is_refused():
    assert_refused("policy_denied", "398 days", check, ["a.home.arpa"], validity=398)


def test_default_validity_is_90_days():
    assert check(["a.home.arpa"]).validity_days == 90


def test_country_must_be_two_letters():
    subject = [(NameOID.COUNTRY_NAME, "D1")]
    assert_refused("policy_denied", "'D1'", check, ["a.home.arpa"], None, subject)


def test_overlong_organization_is_refused():
    subject = [(NameOID.ORGANIZATION_NAME, "x" * 65)]
    assert_refused("policy_denied", "O=", check, ["a.home.arpa"], None, subject)


def test_control_characters_in_subject_are_refused():
    subject = [(NameOID.ORGANIZATION_NAME, "Lab\x07")]
    assert_refused("bad_csr", "control", check, ["a.home.arpa"], None, subject)


def test_common_name_must_be_first_name():
    subject = [(NameOID.COMMON_NAME, "other.home.arpa")]
    assert_refused("policy_denied", "CN=", check, ["a.home.arpa"], None, subject)


def test_disallowed_subject_field_is_refused():
    subject = [(NameOID.EMAIL_ADDRESS, "a@b.c")]
    assert_refused("policy_denied", "1.2.840", check, ["a.home.arpa"], None, subject)


def test_garbage_csr_is_bad_csr():
    assert_refused("bad_csr", "PKCS#10", check_csr, "not a csr", None, POLICY)


def test_csr_signed_by_another_key_is_bad_csr():
    csr, _ = make_csr(["a.home.arpa"])
    other, _ = make_csr(["a.home.arpa"])
    # Swap in the other CSR's signature: same shape, wrong key.
    tampered = csr[:-120] + other[-120:]

    with pytest.raises(ScbError) as info:
        check_csr(tampered, None, POLICY)
    assert info.value.code == "bad_csr"


def test_address_outside_networks_is_refused():
    address = ipaddress.ip_address("8.8.8.8")

    assert_refused("policy_denied", "8.8.8.8", check_address, address, "a", POLICY)


def test_loopback_is_refused_unless_listed():
    address = ipaddress.ip_address("127.0.0.2")
    listed = Policy(
        allowed_domains=("home.arpa",),
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )

    assert_refused("policy_denied", "127.0.0.2", check_address, address, "a", POLICY)
    check_address(address, "a", listed)


def test_agent_own_address_is_refused():
    own = ipaddress.ip_address("10.0.0.5")
    policy = Policy(allowed_domains=("home.arpa",), own_addresses=frozenset({own}))

    assert_refused("policy_denied", "agent itself", check_address, own, "a", policy)


def test_challenge_port_outside_range_is_refused():
    assert_refused("policy_denied", "8080", check_challenge_port, 8080, POLICY)


def test_requested_names_are_read_for_the_record_of_a_refusal():
    csr, _ = make_csr(["SVC.Home.Arpa", "*.home.arpa", "[/b]x y", "a" * 300])

    assert requested_names(csr) == ["svc.home.arpa", "*.home.arpa", "??b?x?y", "a" * 40]
    assert requested_names("not a CSR") == []
    assert requested_names(make_csr([])[0]) == []
