"""`scb-agent`: every command of the agent and the host client.

Command modules are imported only once their command is chosen, so that
`scb-agent --help` stays fast (and textual is never imported here).

Exit status: 0 success; 1 the CA refused or the work failed (the error code
and message are printed to stderr); 2 a bad command line, config or file.
"""

import argparse
import logging
import sys

from scb_core.errors import ConfigError, ScbError
from scb_core.paths import resolve_paths

# Privileged, so only root can answer for its host (see DESIGN, Policy).
DEFAULT_CHALLENGE_PORT = 844

EXIT_FAILED = 1
EXIT_USAGE = 2

COMMANDS = {
    "init": ("scb_agent.init_ca", "run_init"),
    "fingerprint": ("scb_agent.commands", "run_fingerprint"),
    "serve": ("scb_agent.serve", "run_serve"),
    "bootstrap": ("scb_agent.bootstrap", "run_bootstrap"),
    "request": ("scb_agent.request_cmd", "run_request"),
    "renew": ("scb_agent.renew", "run_renew"),
    "certificates": ("scb_agent.host_certs", "run_certificates"),
    "units": ("scb_agent.units_cmd", "run_units"),
    "admin": ("scb_agent.admin_cmd", "run_admin"),
    "revoke": ("scb_agent.revoke_cmd", "run_revoke"),
    "demo": ("scb_agent.demo", "run_demo"),
    "check": ("scb_agent.check_cmd", "run_check"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scb-agent",
        description="Self Certification Bot: a private CA and its hosts' client.",
    )
    parser.add_argument("--config-dir", help="override SCB_CONFIG_DIR")
    parser.add_argument("--state-dir", help="override SCB_STATE_DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_init(sub)
    sub.add_parser("fingerprint", help="print the root's SHA-256 fingerprint")
    sub.add_parser("serve", help="run the certifier (CA host)")
    _add_bootstrap(sub)
    _add_request(sub)
    _add_renew(sub)
    _add_certificates(sub)
    _add_units(sub)
    _add_admin(sub)
    _add_revoke(sub)
    _add_demo(sub)
    sub.add_parser(
        "check", help="verify the store (CA host; agent stopped or running)"
    )
    return parser


def _add_admin(sub) -> None:
    p = sub.add_parser("admin", help="operator commands (the agent must be running)")
    admin = p.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    a = admin.add_parser("status", help="the agent, its CA and counts")
    _json(a)
    a = admin.add_parser("requests", help="pending and recent requests, with stage")
    a.add_argument("--pending", action="store_true", help="only unfinished ones")
    a.add_argument("--limit", type=int, default=50)
    _json(a)
    a = admin.add_parser("certificates", help="issued certificates and their status")
    a.add_argument("--search", default="", help="part of a name or serial")
    a.add_argument("--status", choices=("valid", "revoked", "expired"), default="")
    a.add_argument("--offset", type=int, default=0)
    a.add_argument("--limit", type=int, default=100)
    _json(a)
    a = admin.add_parser("certificate", help="one certificate with its PEM")
    a.add_argument("serial")
    _json(a)
    a = admin.add_parser("approve", help="approve a request awaiting approval")
    a.add_argument("request_id", metavar="ID")
    _json(a)
    a = admin.add_parser("deny", help="deny a request awaiting approval")
    a.add_argument("request_id", metavar="ID")
    a.add_argument("--reason", default="")
    _json(a)
    a = admin.add_parser("revoke", help="revoke a certificate and publish the CRL")
    a.add_argument("serial", help="hex, as `openssl x509 -serial` prints it")
    _reason(a)
    _json(a)
    a = admin.add_parser("audit", help="the append-only audit log, newest first")
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--search", default="")
    _json(a)
    a = admin.add_parser("bans", help="active bans of addresses, networks, names")
    _json(a)
    a = admin.add_parser("ban", help="ban an address, a CIDR network or a name")
    a.add_argument("value", metavar="VALUE", help="10.0.0.7, 10.0.0.0/24, a.home.arpa")
    a.add_argument(
        "--for",
        dest="duration",
        default="",
        metavar="DURATION",
        help="30m, 2h, 7d, 1w... (default: until lifted)",
    )
    a.add_argument("--reason", default="", metavar="TEXT")
    _json(a)
    a = admin.add_parser("unban", help="lift a ban by its id or its value")
    a.add_argument("id_or_value", metavar="ID_OR_VALUE")
    _json(a)


def _json(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _reason(parser) -> None:
    parser.add_argument(
        "--reason",
        default="unspecified",
        help="RFC 5280 reason, any case: keyCompromise, superseded, "
        "cessationOfOperation, affiliationChanged, unspecified (default), ...",
    )


def _add_revoke(sub) -> None:
    p = sub.add_parser(
        "revoke", help="revoke this host's own certificate (proves the key)"
    )
    p.add_argument(
        "target",
        metavar="NAME_OR_CERT",
        help="a lineage name under live/, or the path of a certificate PEM",
    )
    _reason(p)
    p.add_argument(
        "--key", metavar="PEM", help="its private key (default: privkey.pem beside it)"
    )
    p.add_argument("--server", metavar="HOST:PORT", help="default: as bootstrapped")


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="a throw-away CA, agent, DNS and host on loopback: one issuance"
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the lab running, print commands to try, stop on Ctrl-C",
    )
    p.add_argument(
        "--dir", metavar="DIR", help="an empty dir (default: a new temp dir)"
    )


def _add_bootstrap(sub) -> None:
    p = sub.add_parser("bootstrap", help="fetch and pin the CA root (any host)")
    p.add_argument("--server", required=True, metavar="HOST:PORT")
    p.add_argument(
        "--fingerprint",
        required=True,
        metavar="HEX",
        help="root SHA-256, as init printed",
    )


def _add_request(sub) -> None:
    p = sub.add_parser("request", help="get a certificate for NAME (any host)")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_client_options(p)
    p.add_argument("--out", metavar="DIR", help="where live/, archive/ go")
    p.add_argument(
        "--deploy-hook",
        metavar="CMD",
        help="shell command run after this and every renewal (stored)",
    )
    p.add_argument(
        "--key-group",
        metavar="GROUP",
        help="make the key files 0640 and owned by this group",
    )
    p.add_argument("--reuse-key", action="store_true", help="keep this key on renewal")
    _hook_timeout(p)


def _add_renew(sub) -> None:
    p = sub.add_parser("renew", help="renew the certificates that are due")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every one")
    p.add_argument(
        "--days",
        type=int,
        default=0,
        metavar="N",
        help="also renew what expires within N days (default: only a "
        "certificate with less than a third of its lifetime left)",
    )
    p.add_argument("--force", action="store_true", help="renew even if not due")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="try every selected renewal against the agent; keep nothing, run no hooks",
    )
    p.add_argument("--out", metavar="DIR", help="where live/, archive/ are")
    _hook_timeout(p)


def _hook_timeout(p) -> None:
    p.add_argument(
        "--hook-timeout",
        type=float,
        metavar="SECONDS",
        help="kill a deploy hook after this long (default 300)",
    )


def _add_certificates(sub) -> None:
    p = sub.add_parser("certificates", help="this host's certificates and status")
    p.add_argument("--out", metavar="DIR", help="where live/, archive/ are")
    _json(p)


def _add_units(sub) -> None:
    p = sub.add_parser("units", help="print or install the systemd units")
    p.add_argument("--install", metavar="DIR", help="write them into DIR")
    p.add_argument(
        "--exec",
        dest="executable",
        metavar="PATH",
        help="scb-agent for ExecStart= (default: this installation's)",
    )


def add_client_options(p) -> None:
    """Options `request` shares with other client commands."""
    p.add_argument("--server", metavar="HOST:PORT", help="default: as bootstrapped")
    p.add_argument(
        "--challenge-port",
        type=int,
        metavar="N",
        help=f"port to answer the challenge on (default {DEFAULT_CHALLENGE_PORT})",
    )
    p.add_argument("--challenge-bind", metavar="ADDR", help="default: all addresses")
    p.add_argument(
        "--key-type",
        choices=("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"),
        default="ec-p256",
    )
    p.add_argument("--validity-days", type=int, metavar="N")
    p.add_argument("--subject", metavar="O=..,OU=..,C=..", help="subject fields")


def _add_init(sub) -> None:
    p = sub.add_parser("init", help="create the CA on this host (once)")
    p.add_argument("--name", default="SCB private CA", help="the CA's common name")
    p.add_argument(
        "--allow-domain",
        action="append",
        metavar="SUFFIX",
        help="a domain suffix names must end in (repeatable)",
    )
    p.add_argument(
        "--allow-network",
        action="append",
        metavar="CIDR",
        help="a network resolved addresses must be in (repeatable; "
        "default RFC 1918, 100.64.0.0/10, fc00::/7)",
    )
    p.add_argument(
        "--resolver",
        action="append",
        metavar="IP[:PORT]",
        help="DNS resolver to validate names with (repeatable)",
    )
    p.add_argument("--listen", default="0.0.0.0:8443", metavar="HOST:PORT")
    p.add_argument(
        "--server-name",
        action="append",
        metavar="NAME_OR_IP",
        help="name or IP hosts reach the agent by (repeatable; default the FQDN)",
    )
    p.add_argument("--challenge-ports", default="1-1023", metavar="LO-HI")
    p.add_argument("--http-listen", metavar="HOST:PORT", help="serve CRL and root")
    p.add_argument("--crl-url", metavar="URL", help="CRL URL to put in leaves")
    p.add_argument("--approval", choices=("auto", "manual"), default="auto")
    p.add_argument(
        "--key-type",
        choices=("ec-p256", "ec-p384", "rsa-3072", "rsa-4096"),
        default="ec-p256",
    )
    p.add_argument("--no-intermediate", action="store_true")
    p.add_argument("--no-name-constraints", action="store_true")
    p.add_argument("--import-cert", metavar="PEM", help="adopt this root CA cert")
    p.add_argument("--import-key", metavar="PEM", help="the adopted CA's key")
    p.add_argument("--passphrase-file", metavar="FILE", help="encrypt/decrypt keys")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    paths = resolve_paths(args.config_dir, args.state_dir)
    module_name, function_name = COMMANDS[args.command]

    import importlib

    command = getattr(importlib.import_module(module_name), function_name)
    try:
        return command(args, paths)
    except ConfigError as exc:
        print(f"scb-agent {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScbError as exc:
        wait = f" (retry after {exc.retry_after} s)" if exc.retry_after else ""
        print(
            f"scb-agent {args.command}: error {exc.code}: {exc.message}{wait}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except OSError as exc:
        # The machine, not the input: a full disk, a vanished directory.
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"scb-agent {args.command}: cannot use{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
