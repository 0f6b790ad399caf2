"""`scb-agent init`: create (or adopt) the CA and write agent.toml."""

import socket
import sys
from pathlib import Path

from cryptography import x509

from scb_core.authority_files import (
    load_root,
    read_passphrase,
    save_authority,
    save_server_identity,
)
from scb_core.ca import (
    Authority,
    create_intermediate,
    create_root,
    fingerprint,
    format_fingerprint,
    issue_server_certificate,
)
from scb_core.config import config_from_dict, save_agent_config
from scb_core.errors import ConfigError
from scb_core.keys import PrivateKey, generate_key, load_private_key
from scb_core.paths import Paths

INIT_KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072", "rsa-4096")


def run_init(args, paths: Paths) -> int:
    if paths.agent_config.exists() or (paths.ca_dir / "root.pem").exists():
        raise ConfigError(
            f"a CA already exists here ({paths.agent_config}, {paths.ca_dir}); "
            "refusing to overwrite it"
        )

    config = config_from_dict(_config_values(args), "scb-agent init flags")
    try:
        passphrase = read_passphrase(args.passphrase_file)
    except ValueError as exc:
        raise ConfigError(f"--passphrase-file: {exc}") from exc

    if args.import_cert:
        root, root_key = _import_ca(args, passphrase)
    else:
        root_key = generate_key(args.key_type)
        root = create_root(args.name, root_key)

    issuer_key, chain = root_key, ()
    if not args.no_intermediate:
        issuer_key = generate_key(args.key_type)
        constraints = None if args.no_name_constraints else config.allowed_domains
        intermediate = create_intermediate(
            root, root_key, f"{args.name} issuing CA", issuer_key, constraints
        )
        chain = (intermediate,)

    authority = Authority(root=root, issuer_key=issuer_key, chain=chain)
    _write_everything(paths, config, authority, root_key, passphrase, args)
    _print_summary(paths, config, load_root(paths.ca_dir))
    return 0


def _config_values(args) -> dict:
    domains = args.allow_domain or _ask_for_domains()
    values = {
        "name": args.name,
        "listen": args.listen,
        "allowed_domains": domains,
        "server_names": args.server_name or [socket.getfqdn()],
        "challenge_ports": args.challenge_ports,
        "approval": args.approval,
        "key_type": args.key_type,
    }
    optional = {
        "allowed_networks": args.allow_network,
        "resolvers": args.resolver,
        "http_listen": args.http_listen,
        "crl_url": args.crl_url,
        "passphrase_file": args.passphrase_file
        and str(Path(args.passphrase_file).resolve()),
    }
    values.update({key: value for key, value in optional.items() if value})
    return values


def _ask_for_domains() -> list[str]:
    """allowed_domains empty allows nothing, so init insists on it."""
    if not sys.stdin.isatty():
        raise ConfigError(
            "give at least one --allow-domain SUFFIX (e.g. home.arpa): "
            "with none, no name could ever be certified"
        )
    answer = input("Allowed domain suffixes (space separated, e.g. home.arpa): ")
    return [part.strip().lower() for part in answer.split() if part.strip()]


def _import_ca(args, passphrase: bytes | None):
    """Adopt an existing root CA: its certificate and key."""
    if not args.import_key:
        raise ConfigError("--import-cert needs --import-key")

    try:
        certs = x509.load_pem_x509_certificates(Path(args.import_cert).read_bytes())
        key = load_private_key(Path(args.import_key).read_bytes(), passphrase)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot import the CA: {exc}") from exc

    root = certs[0]
    _check_importable(root, key, args.import_cert)
    if root.subject != root.issuer:
        # An imported intermediate would leave the root key's place empty.
        raise ConfigError(
            f"{args.import_cert}: import a self-signed root CA, "
            f"not {root.subject.rfc4514_string()} issued by another CA"
        )
    return root, key


def _check_importable(cert: x509.Certificate, key: PrivateKey, source: str) -> None:
    if cert.public_key() != key.public_key():
        raise ConfigError(f"{source}: the key does not belong to the certificate")

    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise ConfigError(f"{source}: not a CA certificate (basicConstraints CA:FALSE)")


def _write_everything(paths, config, authority, root_key, passphrase, args) -> None:
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    save_authority(paths.ca_dir, authority, root_key, passphrase)

    # The agent's TLS key is a leaf key: never the CA's, always EC for speed.
    server_key = generate_key("ec-p256")
    server_cert = issue_server_certificate(
        authority.root, root_key, config.server_names, server_key
    )
    save_server_identity(paths.ca_dir, server_cert, server_key)
    save_agent_config(config, paths.agent_config)


def _print_summary(paths: Paths, config, root: x509.Certificate) -> None:
    print(f"CA created: {root.subject.rfc4514_string()}")
    print(f"  config:      {paths.agent_config}")
    print(f"  state:       {paths.state_dir}")
    print(f"  allowed:     {', '.join(config.allowed_domains)}")
    print(f"  server names: {', '.join(config.server_names)}")
    print(f"Root SHA-256 fingerprint: {format_fingerprint(fingerprint(root))}")
    print("Hosts run: scb-agent bootstrap --server HOST:PORT --fingerprint <that>")
