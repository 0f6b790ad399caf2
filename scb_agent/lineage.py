"""certbot's file layout, written so that a crash never mixes two versions.

    archive/NAME/{cert,chain,fullchain,privkey}N.pem   every version, kept
    live/.NAME.N/{cert,chain,fullchain,privkey}.pem    links into archive
    live/NAME -> .NAME.N                               the newest version
    renewal/NAME.toml                                  what `renew` needs

Each version's files are written (temp file, fsync, rename) before the
`live/NAME` link is swapped by one rename(2), so a reader sees either the
old set or the new one, never a key from one and a certificate from another.
"""

import grp
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomli_w
from cryptography import x509

from scb_core.authority_files import pem_of
from scb_core.errors import ConfigError
from scb_core.files import fsync_dir, write_atomic

FILES = ("cert", "chain", "fullchain", "privkey")
_VERSION = re.compile(r"^cert(\d+)\.pem$")


@dataclass
class RenewalSettings:
    """renewal/NAME.toml: how to ask for this lineage again."""

    names: list[str]
    server: str
    key_type: str = "ec-p256"
    challenge_port: int = 0
    challenge_bind: str = ""
    validity_days: int = 0  # 0: the CA's default
    subject: str = ""
    deploy_hook: str = ""
    reuse_key: bool = False
    key_group: str = ""
    version: int = 0


@dataclass
class Lineage:
    base: Path  # the config dir, or --out
    name: str
    settings: RenewalSettings | None = field(default=None, repr=False)

    @property
    def archive_dir(self) -> Path:
        return self.base / "archive" / self.name

    @property
    def live_dir(self) -> Path:
        return self.base / "live" / self.name

    @property
    def renewal_file(self) -> Path:
        return self.base / "renewal" / f"{self.name}.toml"

    def versions(self) -> list[int]:
        if not self.archive_dir.is_dir():
            return []
        found = (_VERSION.match(p.name) for p in self.archive_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def current_version(self) -> int | None:
        target = os.readlink(self.live_dir) if self.live_dir.is_symlink() else ""
        match = re.fullmatch(rf"\.{re.escape(self.name)}\.(\d+)", target)
        return int(match.group(1)) if match else None

    def write_version(
        self, key_pem: bytes, chain: list[x509.Certificate], key_group: str = ""
    ) -> int:
        """Archive a new version and make it live; returns its number."""
        if self.live_dir.exists() and not self.live_dir.is_symlink():
            raise ConfigError(f"{self.live_dir} exists and is not SCB's link")

        version = max(self.versions(), default=0) + 1
        self._archive(version, key_pem, chain, key_group)
        self._switch(version)
        return version

    def _archive(self, version: int, key_pem: bytes, chain, key_group: str) -> None:
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        key_path = self.archive_dir / f"privkey{version}.pem"
        write_atomic(key_path, key_pem, mode=0o640 if key_group else 0o600)
        if key_group:
            os.chown(key_path, -1, _group_id(key_group))

        contents = {
            "cert": pem_of(chain[0]),
            "chain": pem_of(*chain[1:]),
            "fullchain": pem_of(*chain),
        }
        for kind, data in contents.items():
            write_atomic(self.archive_dir / f"{kind}{version}.pem", data)

    def _switch(self, version: int) -> None:
        live_root = self.live_dir.parent
        links = live_root / f".{self.name}.{version}"
        links.mkdir(parents=True, exist_ok=True)
        for kind in FILES:
            link = links / f"{kind}.pem"
            if not link.is_symlink():
                target = Path("..", "..", "archive", self.name, f"{kind}{version}.pem")
                link.symlink_to(target)
        fsync_dir(links)

        previous = self.current_version()
        pending = live_root / f".{self.name}.next"
        pending.unlink(missing_ok=True)
        pending.symlink_to(links.name)
        os.replace(pending, self.live_dir)
        fsync_dir(live_root)

        if previous is not None and previous != version:
            _remove_links(live_root / f".{self.name}.{previous}")

    def save_settings(self, settings: RenewalSettings) -> None:
        self.settings = settings
        data = {k: v for k, v in asdict(settings).items()}
        write_atomic(self.renewal_file, tomli_w.dumps(data).encode())

    def load_settings(self) -> RenewalSettings:
        try:
            raw = tomllib.loads(self.renewal_file.read_text())
            self.settings = RenewalSettings(**raw)
        except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
            raise ConfigError(f"{self.renewal_file}: cannot be read: {exc}") from exc
        return self.settings

    def live_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.live_dir / "cert.pem").read_bytes())


def all_lineages(base: Path) -> list[Lineage]:
    renewal = base / "renewal"
    if not renewal.is_dir():
        return []
    return [Lineage(base, p.stem) for p in sorted(renewal.glob("*.toml"))]


def _remove_links(links: Path) -> None:
    for kind in FILES:
        (links / f"{kind}.pem").unlink(missing_ok=True)
    try:
        links.rmdir()
    except OSError:
        pass


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise ConfigError(f"--key-group {name!r}: no such group") from exc
