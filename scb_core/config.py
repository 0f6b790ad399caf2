"""agent.toml: read with tomllib, written with tomli-w, validated as a whole.

Every key has a safe default, so a file needs only what differs. A key that is
unknown, of the wrong type or out of range stops the agent with a message that
names the file, the key and the value.
"""

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import tomli_w

from .errors import ConfigError, ScbError
from .files import write_atomic
from .keys import KEY_TYPES
from .policy import DEFAULT_NETWORKS, IPNetwork, Policy, normalize_name


@dataclass(frozen=True)
class Timeouts:
    handshake: float = 10.0
    message: float = 30.0
    request: float = 120.0
    challenge: float = 10.0
    dns: float = 5.0


@dataclass(frozen=True)
class Limits:
    requests_per_address_per_hour: int = 30
    failures_per_address_per_hour: int = 5
    failures_per_name_per_hour: int = 5
    certificates_per_name_set_per_week: int = 10
    connections_per_address: int = 4
    connections_total: int = 256
    ban_seconds: int = 3600
    max_ban_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class CrlSettings:
    interval_hours: float = 24.0
    next_update_days: int = 7


@dataclass(frozen=True)
class AgentConfig:
    name: str = "SCB private CA"
    listen: str = "0.0.0.0:8443"
    server_names: list[str] = field(default_factory=list)
    allowed_domains: list[str] = field(default_factory=list)
    allowed_networks: list[str] = field(default_factory=lambda: list(DEFAULT_NETWORKS))
    challenge_ports: str = "1-1023"
    resolvers: list[str] = field(default_factory=lambda: ["127.0.0.1:53"])
    require_dnssec: bool = False
    caa_identities: list[str] = field(default_factory=list)
    approval: str = "auto"
    manual_approval_domains: list[str] = field(default_factory=list)
    approval_timeout: int = 600
    http_listen: str = ""
    crl_url: str = ""
    key_type: str = "ec-p256"
    default_validity_days: int = 90
    max_validity_days: int = 397
    max_names: int = 100
    passphrase_file: str = ""
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    crl: CrlSettings = field(default_factory=CrlSettings)

    def policy(self, own_addresses=frozenset()) -> Policy:
        return Policy(
            allowed_domains=tuple(self.allowed_domains),
            allowed_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in self.allowed_networks
            ),
            challenge_ports=parse_port_range(self.challenge_ports),
            default_validity_days=self.default_validity_days,
            max_validity_days=self.max_validity_days,
            max_names=self.max_names,
            own_addresses=frozenset(own_addresses),
        )

    def needs_approval(self, names: list[str]) -> bool:
        if self.approval == "manual":
            return True
        return any(
            name == suffix or name.endswith("." + suffix)
            for name in names
            for suffix in self.manual_approval_domains
        )

    @property
    def effective_crl_url(self) -> str:
        """crl_url, or the agent's own HTTP listener's address when that is on.

        A listener on every address (0.0.0.0, ::) cannot be named in a URL, so
        hosts are sent to the agent's first server name instead.
        """
        if self.crl_url or not self.http_listen:
            return self.crl_url
        host, port = parse_host_port(self.http_listen)
        if host in ("0.0.0.0", "::") and self.server_names:
            host = self.server_names[0]
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal, bracketed as RFC 3986 says
        return f"http://{host}:{port}/crl.der"


SECTIONS = {"timeouts": Timeouts, "limits": Limits, "crl": CrlSettings}


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """ "host:port", "[v6]:port" or (with a default port) a bare host."""
    host, sep, port = text.rpartition(":")
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ""
        sep = ":" if port else ""
    elif not sep or ":" in host:
        host, port = text, ""

    if not port:
        if default_port is None:
            raise ValueError(f"{text!r} needs a port, as HOST:PORT")
        return host, default_port

    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port in {text!r} must be 1 to 65535")
    if not host:
        raise ValueError(f"{text!r} has no host")
    return host, int(port)


def parse_port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise ValueError(f"port range {text!r} must look like LO-HI, e.g. 1-1023")

    low_port, high_port = int(low), int(high)
    if not 1 <= low_port <= high_port <= 65535:
        raise ValueError(f"port range {text!r} must satisfy 1 <= LO <= HI <= 65535")
    return low_port, high_port


def load_agent_config(path: Path) -> AgentConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: not found; run `scb-agent init` to create the CA"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    return config_from_dict(raw, str(path))


def config_from_dict(raw: dict[str, Any], source: str) -> AgentConfig:
    values = _read_section(AgentConfig, raw, source, "")
    config = AgentConfig(**values)
    _validate(config, source)
    return config


def save_agent_config(config: AgentConfig, path: Path) -> None:
    write_atomic(path, tomli_w.dumps(config_to_dict(config)).encode())


def config_to_dict(config: AgentConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name in SECTIONS:
            value = {s.name: getattr(value, s.name) for s in fields(value)}
        out[f.name] = value
    return out


def _read_section(cls, raw: dict, source: str, prefix: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{source}: key {prefix}{key}"
        if key not in known:
            raise ConfigError(f"{where} is unknown; known keys: {', '.join(known)}")

        if key in SECTIONS and prefix == "":
            if not isinstance(value, dict):
                raise ConfigError(f"{where} must be a table, got {value!r}")
            sub = _read_section(SECTIONS[key], value, source, f"{key}.")
            values[key] = SECTIONS[key](**sub)
            continue

        values[key] = _typed(value, _default_of(known[key]), where)
    return values


def _default_of(f) -> Any:
    return f.default_factory() if callable(f.default_factory) else f.default


def _typed(value: Any, default: Any, where: str) -> Any:
    """Check `value` has the type of the key's default (ints pass for floats)."""
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)

    if type(value) is not expected:
        raise ConfigError(f"{where} must be {_type_word(expected)}, got {value!r}")

    if expected is list and not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return value


def _type_word(expected: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list of strings",
    }[expected]


def _validate(config: AgentConfig, source: str) -> None:
    """Values that parse as the right type but cannot be used."""
    limits = config.limits
    checks = [
        ("listen", lambda: parse_host_port(config.listen)),
        ("challenge_ports", lambda: parse_port_range(config.challenge_ports)),
        ("allowed_domains", lambda: _check_domains(config.allowed_domains)),
        (
            "manual_approval_domains",
            lambda: _check_domains(config.manual_approval_domains),
        ),
        ("allowed_networks", lambda: _check_networks(config.allowed_networks)),
        ("resolvers", lambda: _check_resolvers(config.resolvers)),
        ("approval", lambda: _one_of(config.approval, ("auto", "manual"))),
        ("key_type", lambda: _one_of(config.key_type, KEY_TYPES)),
        (
            "http_listen",
            lambda: config.http_listen and parse_host_port(config.http_listen),
        ),
        ("max_validity_days", lambda: _between(config.max_validity_days, 1, 397)),
        (
            "default_validity_days",
            lambda: _between(config.default_validity_days, 1, config.max_validity_days),
        ),
        ("max_names", lambda: _between(config.max_names, 1, 100)),
        ("approval_timeout", lambda: _between(config.approval_timeout, 1, 7 * 86400)),
        (
            "limits.ban_seconds",
            lambda: _between(limits.ban_seconds, 1, limits.max_ban_seconds),
        ),
    ]
    checks += [
        ("name", lambda: _text_length(config.name, 1, 64)),
        ("server_names", lambda: _check_server_names(config.server_names)),
        ("caa_identities", lambda: _check_domains(config.caa_identities)),
        ("crl_url", lambda: config.crl_url and _check_url(config.crl_url)),
    ]
    # Each value alone before any relation between them, so that a bad
    # max_ban_seconds is named as itself rather than through ban_seconds.
    checks = (
        _positive_section("timeouts", config.timeouts)
        + _positive_section("limits", config.limits)
        + _positive_section("crl", config.crl)
        + checks
    )

    for key, check in checks:
        try:
            check()
        except ValueError as exc:
            value = _lookup(config, key)
            raise ConfigError(f"{source}: key {key} = {value!r}: {exc}") from exc


def _positive_section(name: str, section) -> list:
    return [
        (f"{name}.{f.name}", partial(_between, getattr(section, f.name), 0.001, 1e9))
        for f in fields(section)
    ]


def _lookup(config: AgentConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _between(value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}")


def _one_of(value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}")


def _check_domains(domains: list[str]) -> None:
    for domain in domains:
        try:
            valid = normalize_name(domain) == domain
        except ScbError:
            valid = False
        if not valid:
            raise ValueError(f"{domain!r} is not a lower-case DNS suffix")


def _text_length(text: str, low: int, high: int) -> None:
    if not low <= len(text) <= high:
        raise ValueError(f"must be {low} to {high} characters")


def _check_server_names(names: list[str]) -> None:
    for name in names:
        try:
            ipaddress.ip_address(name)
            continue
        except ValueError:
            pass
        try:
            normalize_name(name)
        except ScbError as exc:
            raise ValueError(f"{name!r} is not an IP address or DNS name") from exc


def _check_url(url: str) -> None:
    # Hosts and openssl fetch CRLs over plain HTTP (RFC 5280, 4.2.1.13).
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or " " in url:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")


def _check_networks(networks: list[str]) -> list[IPNetwork]:
    parsed = []
    for network in networks:
        try:
            parsed.append(ipaddress.ip_network(network, strict=False))
        except ValueError as exc:
            raise ValueError(f"{network!r} is not a CIDR network") from exc
    return parsed


def _check_resolvers(resolvers: list[str]) -> None:
    if not resolvers:
        raise ValueError("at least one resolver is needed")

    for resolver in resolvers:
        host, _ = parse_host_port(resolver, default_port=53)
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise ValueError(f"resolver {resolver!r} must be an IP address") from exc
