"""client.toml: what `bootstrap` learned, for every later client command."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from .config import parse_host_port
from .errors import ConfigError
from .files import write_atomic


@dataclass(frozen=True)
class ClientConfig:
    server: str  # HOST:PORT of the agent

    @property
    def address(self) -> tuple[str, int]:
        return parse_host_port(self.server)


def load_client_config(path: Path) -> ClientConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: not found; run `scb-agent bootstrap` or pass --server"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc

    unknown = set(raw) - {"server"}
    if unknown:
        raise ConfigError(f"{path}: key {sorted(unknown)[0]} is unknown")
    server = raw.get("server")
    if not isinstance(server, str):
        raise ConfigError(
            f"{path}: key server must be a HOST:PORT string, got {server!r}"
        )
    try:
        parse_host_port(server)
    except ValueError as exc:
        raise ConfigError(f"{path}: key server = {server!r}: {exc}") from exc
    return ClientConfig(server)


def save_client_config(config: ClientConfig, path: Path) -> None:
    write_atomic(path, tomli_w.dumps({"server": config.server}).encode())
