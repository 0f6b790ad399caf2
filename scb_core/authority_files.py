"""The CA's files in the state dir, and loading them back.

    ca/root.pem      the trust anchor every host pins
    ca/root.key      only needed again to issue a new intermediate
    ca/issuer.pem    the issuing CA and any CAs between it and the root
    ca/issuer.key    what the agent signs leaves and CRLs with
    ca/server.pem    the agent's own TLS certificate (a leaf of the root)
    ca/server.key

Without an intermediate, issuer.* are copies of root.*. Keys are 0600 and, with
a passphrase, encrypted; the server key is not, as it is only a TLS identity.
"""

import os
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .ca import Authority
from .errors import ConfigError
from .files import write_atomic
from .keys import PrivateKey, load_private_key, private_key_pem

CREDENTIAL_NAME = "scb-passphrase"
KEY_FILES = ("root.key", "issuer.key", "server.key")


def pem_of(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def write_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    write_atomic(path, private_key_pem(key, passphrase), mode=0o600)


def save_authority(
    ca_dir: Path,
    authority: Authority,
    root_key: PrivateKey,
    passphrase: bytes | None,
) -> None:
    ca_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    write_atomic(ca_dir / "root.pem", pem_of(authority.root))
    write_key(ca_dir / "root.key", root_key, passphrase)
    write_atomic(ca_dir / "issuer.pem", pem_of(*(authority.chain or [authority.root])))
    write_key(ca_dir / "issuer.key", authority.issuer_key, passphrase)


def save_server_identity(ca_dir: Path, cert: x509.Certificate, key: PrivateKey):
    write_atomic(ca_dir / "server.pem", pem_of(cert))
    write_key(ca_dir / "server.key", key)


def read_passphrase(passphrase_file: str | None) -> bytes | None:
    """systemd's credential when the unit passed one, else the configured file.

    The credential wins: scb-agent.service runs as a dynamic user that cannot
    read the root-only file `init --passphrase-file` recorded in agent.toml.
    """
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        candidate = Path(credentials) / CREDENTIAL_NAME
        if candidate.exists():
            passphrase_file = str(candidate)

    if not passphrase_file:
        return None
    try:
        data = Path(passphrase_file).read_bytes()
    except OSError as exc:
        raise ValueError(
            f"cannot read passphrase file {passphrase_file}: {exc}"
        ) from exc
    return data.rstrip(b"\r\n")


def load_authority(ca_dir: Path, passphrase: bytes | None) -> Authority:
    root = x509.load_pem_x509_certificate((ca_dir / "root.pem").read_bytes())
    issuers = x509.load_pem_x509_certificates((ca_dir / "issuer.pem").read_bytes())
    key = load_private_key((ca_dir / "issuer.key").read_bytes(), passphrase)
    chain = tuple(c for c in issuers if c != root)
    return Authority(root=root, issuer_key=key, chain=chain)


def load_root(ca_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ca_dir / "root.pem").read_bytes())


def refuse_exposed_keys(ca_dir: Path) -> None:
    """A CA key others can read is no longer the CA's alone: do not use it."""
    for name in KEY_FILES:
        path = ca_dir / name
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue  # load_authority names the files it cannot do without
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if mode & 0o077:
            raise ConfigError(
                f"refusing to start: {path} has mode {stat.S_IMODE(mode):04o}, "
                "readable by others than its owner; chmod 600 it "
                "(and consider the key exposed)"
            )
