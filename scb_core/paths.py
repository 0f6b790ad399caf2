"""Where SCB keeps its files.

Which directory is used, first match wins:

1. the `--config-dir` / `--state-dir` flag,
2. the `SCB_CONFIG_DIR` / `SCB_STATE_DIR` environment variable,
3. `/etc/scb` and `/var/lib/scb` when running as root,
4. the platformdirs user directories otherwise.

The config dir holds `agent.toml` (CA host) or `client.toml` plus the pinned
`root.pem` and the certbot-style `live/`, `archive/` and `renewal/` trees (any
host). The state dir holds the CA keys, the store and the admin socket.
"""

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "scb"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    state_dir: Path

    @property
    def agent_config(self) -> Path:
        return self.config_dir / "agent.toml"

    @property
    def client_config(self) -> Path:
        return self.config_dir / "client.toml"

    @property
    def pinned_root(self) -> Path:
        return self.config_dir / "root.pem"

    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def store(self) -> Path:
        return self.state_dir / "scb.db"

    @property
    def admin_socket(self) -> Path:
        return self.state_dir / "admin.sock"

    @property
    def public_dir(self) -> Path:
        return self.state_dir / "public"


def resolve_paths(config_dir: str | None = None, state_dir: str | None = None) -> Paths:
    """Pick the config and state dirs by the precedence in the module docstring."""
    return Paths(
        config_dir=_pick(config_dir, "SCB_CONFIG_DIR", "/etc/scb", "config"),
        state_dir=_pick(state_dir, "SCB_STATE_DIR", "/var/lib/scb", "state"),
    )


def _pick(flag: str | None, env: str, system: str, kind: str) -> Path:
    if flag:
        return Path(flag)

    if os.environ.get(env):
        return Path(os.environ[env])

    if os.geteuid() == 0:
        return Path(system)

    # Imported here so that the common, overridden case never pays for it.
    import platformdirs

    if kind == "config":
        return Path(platformdirs.user_config_dir(APP_NAME))
    return Path(platformdirs.user_state_dir(APP_NAME))
