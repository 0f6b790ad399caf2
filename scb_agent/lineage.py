"""certbot's file layout, written so that a crash never mixes two versions.

    archive/NAME/{cert,chain,fullchain,privkey}N.pem   every version, kept
    live/.NAME.N/{cert,chain,fullchain,privkey}.pem    links into archive
    live/NAME -> .NAME.N                               the newest version
    renewal/NAME.toml                                  what `renew` needs

Each version's files are written (temp file, fsync, rename) before the
`live/NAME` link is swapped by one rename(2), so a reader sees either the
old set or the new one, never a key from one and a certificate from another.
A crash between the two leaves an archived version that nothing links to;
the next version simply takes the following number. A number is never
reused, even when files of its version are gone, so nothing in archive/ is
ever overwritten.
"""

import fcntl
import grp
import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomli_w
from cryptography import x509

from scb_core.authority_files import pem_of
from scb_core.config import parse_host_port
from scb_core.errors import ConfigError, ScbError
from scb_core.files import fsync_dir, write_atomic
from scb_core.keys import KEY_TYPES
from scb_core.policy import normalize_name

FILES = ("cert", "chain", "fullchain", "privkey")
# Any archived file claims its number, so no version is ever written twice.
_VERSION = re.compile(r"^(?:cert|chain|fullchain|privkey)(\d+)\.pem$")


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
        return sorted({int(m.group(1)) for m in found if m})

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
        gid = group_id(key_group) if key_group else -1

        with self._locked():
            version = max(self.versions(), default=0) + 1
            self._archive(version, key_pem, chain, gid)
            self._switch(version)
        return version

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Two writers (a timer's renew and a manual one) must not share a number."""
        make_dirs(self.archive_dir)
        fd = os.open(self.archive_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _archive(self, version: int, key_pem: bytes, chain, gid: int) -> None:
        key_mode = 0o600 if gid == -1 else 0o640
        key_path = self.archive_dir / f"privkey{version}.pem"
        write_atomic(key_path, key_pem, mode=key_mode, gid=gid)

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
        make_dirs(links)
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
        write_atomic(self.renewal_file, tomli_w.dumps(asdict(settings)).encode())

    def load_settings(self) -> RenewalSettings:
        try:
            raw = tomllib.loads(self.renewal_file.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.renewal_file}: not found") from exc
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{self.renewal_file}: cannot be read: {exc}") from exc

        self.settings = settings_from_dict(raw, self.renewal_file)
        return self.settings

    def live_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.live_dir / "cert.pem").read_bytes())

    def live_chain(self) -> list[x509.Certificate]:
        """The issuing CAs above the live leaf (empty when the root signs)."""
        data = (self.live_dir / "chain.pem").read_bytes()
        return x509.load_pem_x509_certificates(data) if data.strip() else []

    def live_key_pem(self) -> bytes:
        return (self.live_dir / "privkey.pem").read_bytes()


def settings_from_dict(raw: dict, source: Path) -> RenewalSettings:
    """Check every key of a renewal file; the error names file, key and value."""
    known = {f.name for f in fields(RenewalSettings)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{source}: key {key} is unknown")
    for key in ("names", "server"):
        if key not in raw:
            raise ConfigError(f"{source}: key {key} is missing")

    for key, value in raw.items():
        problem = _problem(key, value)
        if problem:
            raise ConfigError(f"{source}: key {key} = {value!r}: {problem}")
    return RenewalSettings(**raw)


def _problem(key: str, value) -> str:
    """What is wrong with one renewal setting, or "" when it is usable."""
    if key == "names":
        if not isinstance(value, list) or not value:
            return "must be a non-empty list of names"
        return next(filter(None, map(_name_problem, value)), "")
    if key == "reuse_key":
        return "" if isinstance(value, bool) else "must be true or false"
    if key in ("challenge_port", "validity_days", "version"):
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        if key == "challenge_port" and not 1 <= value <= 65535:
            return "must be 1 to 65535"
        return "must not be negative" if value < 0 else ""

    if not isinstance(value, str):
        return "must be a string"
    if key == "key_type" and value not in KEY_TYPES:
        return f"must be one of {', '.join(KEY_TYPES)}"
    if key == "server":
        try:
            parse_host_port(value)
        except ValueError as exc:
            return str(exc)
    return ""


def _name_problem(name) -> str:
    """Names as `request` wrote them: valid, lower-case, A-labels."""
    if not isinstance(name, str):
        return f"name {name!r} is not a string"
    try:
        if normalize_name(name) == name:
            return ""
    except ScbError as exc:
        return exc.message
    return f"name {name!r} is not in lower-case A-label form"


def all_lineages(base: Path) -> list[Lineage]:
    renewal = base / "renewal"
    if not renewal.is_dir():
        return []
    return [Lineage(base, p.stem) for p in sorted(renewal.glob("*.toml"))]


def make_dirs(path: Path) -> None:
    """mkdir -p, each new directory 0755 whatever the umask.

    The files carry their own protection (keys 0600, or 0640 for the key
    group); a 0700 directory from a strict umask would lock the key group out.
    Directories that already exist keep the mode the operator gave them.
    """
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, 0o755)


def group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise ConfigError(f"key group {name!r}: no such group") from exc


def _remove_links(links: Path) -> None:
    for kind in FILES:
        (links / f"{kind}.pem").unlink(missing_ok=True)
    try:
        links.rmdir()
    except OSError:
        pass
