"""`scb-agent init` and `fingerprint`, run as a user would, in temp dirs."""

import hashlib
import os
import stat
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.authority_files import load_authority, pem_of, read_passphrase
from scb_core.ca import create_root, issue_leaf
from scb_core.keys import generate_key, private_key_pem
from scb_core.policy import Policy, check_csr

from .helpers import make_csr, verify_with_cryptography, verify_with_openssl


def scb(tmp_path, *args, check=True):
    env = dict(
        os.environ,
        SCB_CONFIG_DIR=str(tmp_path / "config"),
        SCB_STATE_DIR=str(tmp_path / "state"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "scb_agent.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def init(tmp_path, *extra, check=True):
    return scb(
        tmp_path,
        "init",
        "--allow-domain",
        "home.arpa",
        "--server-name",
        "127.0.0.1",
        *extra,
        check=check,
    )


def issue_from(tmp_path, passphrase=None):
    authority = load_authority(tmp_path / "state" / "ca", passphrase)
    csr, _ = make_csr(["svc.home.arpa"])
    leaf = issue_leaf(authority, check_csr(csr, None, Policy(("home.arpa",))))
    return authority, leaf


def test_init_prints_the_fingerprint_that_fingerprint_prints(tmp_path):
    created = init(tmp_path)
    printed = scb(tmp_path, "fingerprint").stdout.strip()

    root_der = x509.load_pem_x509_certificate(
        (tmp_path / "state/ca/root.pem").read_bytes()
    ).public_bytes(Encoding.DER)
    assert printed == hashlib.sha256(root_der).hexdigest()
    assert printed.upper() in created.stdout.replace(":", "")


def test_init_writes_keys_0600_and_config(tmp_path):
    init(tmp_path)

    for name in ("root.key", "issuer.key", "server.key"):
        mode = stat.S_IMODE((tmp_path / "state/ca" / name).stat().st_mode)
        assert mode == 0o600, name
    assert "home.arpa" in (tmp_path / "config/agent.toml").read_text()


def test_init_refuses_when_a_ca_exists(tmp_path):
    init(tmp_path)
    before = (tmp_path / "state/ca/root.pem").read_bytes()

    again = init(tmp_path, check=False)

    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert (tmp_path / "state/ca/root.pem").read_bytes() == before


def test_init_without_allowed_domain_refuses(tmp_path):
    result = scb(tmp_path, "init", check=False)

    assert result.returncode == 2
    assert "--allow-domain" in result.stderr


def test_init_with_bad_network_names_it(tmp_path):
    result = init(tmp_path, "--allow-network", "10.0.0.0/99", check=False)

    assert result.returncode == 2
    assert "10.0.0.0/99" in result.stderr


def test_leaf_from_initialized_ca_verifies(tmp_path):
    init(tmp_path)

    authority, leaf = issue_from(tmp_path)

    verify_with_cryptography(leaf, authority.chain, authority.root, "svc.home.arpa")
    verify_with_openssl(tmp_path, leaf, authority.chain, authority.root)


def test_no_intermediate_signs_with_the_root(tmp_path):
    init(tmp_path, "--no-intermediate", "--key-type", "ec-p384")

    authority, leaf = issue_from(tmp_path)

    assert authority.chain == ()
    assert leaf.issuer == authority.root.subject
    verify_with_openssl(tmp_path, leaf, authority.chain, authority.root)


def test_intermediate_carries_name_constraints_unless_skipped(tmp_path):
    init(tmp_path / "a")
    init(tmp_path / "b", "--no-name-constraints")

    constrained = load_authority(tmp_path / "a/state/ca", None).issuer
    free = load_authority(tmp_path / "b/state/ca", None).issuer

    constraints = constrained.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.value.permitted_subtrees == [x509.DNSName("home.arpa")]
    assert x509.NameConstraints not in [type(e.value) for e in free.extensions]


def test_imported_passphrase_protected_ca_issues_verifiable_leaves(tmp_path):
    key = generate_key("rsa-3072")
    root = create_root("Imported Lab Root", key)
    (tmp_path / "ca.pem").write_bytes(pem_of(root))
    (tmp_path / "ca.key").write_bytes(private_key_pem(key, b"s3cret"))
    (tmp_path / "pass").write_text("s3cret\n")

    init(
        tmp_path,
        "--import-cert",
        str(tmp_path / "ca.pem"),
        "--import-key",
        str(tmp_path / "ca.key"),
        "--passphrase-file",
        str(tmp_path / "pass"),
    )
    passphrase = read_passphrase(str(tmp_path / "pass"))
    authority, leaf = issue_from(tmp_path, passphrase)

    assert authority.root == root
    assert b"ENCRYPTED" in (tmp_path / "state/ca/issuer.key").read_bytes()
    verify_with_cryptography(leaf, authority.chain, root, "svc.home.arpa")
    verify_with_openssl(tmp_path, leaf, authority.chain, root)


def test_import_with_wrong_passphrase_says_so(tmp_path):
    key = generate_key("ec-p256")
    (tmp_path / "ca.pem").write_bytes(pem_of(create_root("R", key)))
    (tmp_path / "ca.key").write_bytes(private_key_pem(key, b"right"))
    (tmp_path / "pass").write_text("wrong")

    result = init(
        tmp_path,
        "--import-cert",
        str(tmp_path / "ca.pem"),
        "--import-key",
        str(tmp_path / "ca.key"),
        "--passphrase-file",
        str(tmp_path / "pass"),
        check=False,
    )

    assert result.returncode == 2
    assert "passphrase" in result.stderr
    assert "wrong" not in result.stderr.replace("wrong passphrase", "")
