"""Helpers shared by the tests: CSRs, CAs in temp dirs, leaf assertions."""

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from scb_core.authority_files import pem_of
from scb_core.ca import Authority, create_intermediate, create_root
from scb_core.keys import PrivateKey, generate_key


def make_csr(
    names: list[str],
    key: PrivateKey | None = None,
    subject: list[tuple] = (),
) -> tuple[str, PrivateKey]:
    key = key or generate_key("ec-p256")
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(oid, value) for oid, value in subject])
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        )
    csr = builder.sign(key, hashes.SHA256())
    from cryptography.hazmat.primitives.serialization import Encoding

    return csr.public_bytes(Encoding.PEM).decode(), key


def make_authority(key_type="ec-p256", intermediate=True, domains=("home.arpa",)):
    root_key = generate_key(key_type)
    root = create_root("Test CA", root_key)
    if not intermediate:
        return Authority(root=root, issuer_key=root_key), root_key
    issuer_key = generate_key(key_type)
    issuer = create_intermediate(
        root, root_key, "Test issuing CA", issuer_key, list(domains)
    )
    return Authority(root=root, issuer_key=issuer_key, chain=(issuer,)), root_key


def verify_with_cryptography(leaf, chain, root, name: str) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(x509.DNSName(name))
    )
    verifier.verify(leaf, list(chain))


def require_program(program: str, package: str, required_by: str) -> str:
    """The program's path, or skip naming its Debian package.

    On a bare machine the tests that need it skip; `.ci/run` installs the
    package and sets `required_by` (SCB_REQUIRE_...), which turns the skip
    into a failure.
    """
    # /usr/sbin is often missing from an unprivileged user's PATH.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    path = shutil.which(program, path=search)
    if path is not None:
        return path
    if os.environ.get(required_by):
        pytest.fail(f"{program} not installed but {required_by} is set")
    pytest.skip(f"{program} not installed (Debian package {package})")


def require_openssl() -> str:
    return require_program("openssl", "openssl", "SCB_REQUIRE_OPENSSL")


def require_nginx() -> str:
    return require_program("nginx", "nginx-light", "SCB_REQUIRE_NGINX")


def verify_with_openssl(tmp_path: Path, leaf, chain, root) -> None:
    openssl = require_openssl()
    (tmp_path / "root.pem").write_bytes(pem_of(root))
    (tmp_path / "chain.pem").write_bytes(pem_of(*chain) if chain else b"")
    (tmp_path / "leaf.pem").write_bytes(pem_of(leaf))
    command = [
        openssl,
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        str(tmp_path / "root.pem"),
    ]
    if chain:
        command += ["-untrusted", str(tmp_path / "chain.pem")]
    result = subprocess.run(
        command + [str(tmp_path / "leaf.pem")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def assert_is_leaf(leaf: x509.Certificate, names: list[str]) -> None:
    """DESIGN's leaf profile, checked field by field."""
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == names
    assert san.critical == (len(leaf.subject) == 0)
    common = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert not common or common[0].value == names[0]

    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)

    assert leaf.serial_number.bit_length() >= 64
    assert leaf.not_valid_before_utc < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert leaf.signature_hash_algorithm.digest_size >= 32
