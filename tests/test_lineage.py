"""Lineages on disk: versions, the live switch under crashes, renewal files.

Unit tests of scb_agent.lineage with certificates from a test CA; no agent.
"""

import grp
import os
import shutil
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from scb_agent.lineage import Lineage, RenewalSettings, all_lineages
from scb_agent.request_cmd import _writable_dir
from scb_core.ca import LeafSpec, issue_leaf
from scb_core.errors import ConfigError
from scb_core.keys import generate_key, load_private_key, private_key_pem, spki_der
from tests.helpers import make_authority

NAME = "web.home.arpa"


@pytest.fixture(scope="module")
def authority():
    return make_authority()[0]


def new_version(authority, days: int = 90) -> tuple[bytes, list[x509.Certificate]]:
    """A fresh key and its chain (leaf, issuing CA), as a renewal gets them."""
    key = generate_key("ec-p256")
    spec = LeafSpec([NAME], key.public_key(), x509.Name([]), days)
    leaf = issue_leaf(authority, spec)
    return private_key_pem(key), [leaf, *authority.chain]


def live_pair(lineage: Lineage) -> tuple[bytes, bytes] | None:
    """(key SPKI, cert SPKI) read through live/NAME, or None if nothing is live."""
    if not lineage.live_dir.exists():
        return None
    key = load_private_key(lineage.live_key_pem())
    return spki_der(key.public_key()), spki_der(lineage.live_certificate().public_key())


def test_each_version_is_archived_and_live_links_to_the_newest(tmp_path, authority):
    lineage = Lineage(tmp_path, NAME)
    first, second = new_version(authority), new_version(authority)

    assert lineage.write_version(*first) == 1
    assert lineage.write_version(*second) == 2

    assert lineage.versions() == [1, 2]
    assert lineage.current_version() == 2
    assert lineage.live_key_pem() == second[0]
    assert lineage.live_certificate() == second[1][0]
    assert lineage.live_chain() == second[1][1:]
    for kind in ("cert", "chain", "fullchain", "privkey"):
        live = lineage.live_dir / f"{kind}.pem"
        assert live.resolve() == lineage.archive_dir / f"{kind}2.pem"
    assert (lineage.archive_dir / "privkey1.pem").read_bytes() == first[0]
    fullchain = (lineage.live_dir / "fullchain.pem").read_bytes()
    assert x509.load_pem_x509_certificates(fullchain) == second[1]
    # The superseded link set is gone; only live/NAME and its target remain.
    assert sorted(p.name for p in (tmp_path / "live").iterdir()) == [
        f".{NAME}.2",
        NAME,
    ]


def test_a_version_number_is_never_reused_so_archive_is_never_overwritten(
    tmp_path, authority
):
    lineage = Lineage(tmp_path, NAME)
    first = new_version(authority)
    lineage.write_version(*first)
    (lineage.archive_dir / "cert1.pem").unlink()  # say, an operator's mistake

    assert lineage.write_version(*new_version(authority)) == 2

    assert (lineage.archive_dir / "privkey1.pem").read_bytes() == first[0]
    assert lineage.versions() == [1, 2]


def test_keys_are_private_and_certificates_readable(tmp_path, authority):
    lineage = Lineage(tmp_path, NAME)
    lineage.write_version(*new_version(authority))

    key_mode = stat.S_IMODE((lineage.archive_dir / "privkey1.pem").stat().st_mode)
    cert_mode = stat.S_IMODE((lineage.archive_dir / "cert1.pem").stat().st_mode)
    assert (key_mode, cert_mode) == (0o600, 0o644)


def test_the_out_dir_request_creates_is_0755_even_under_umask_077(tmp_path):
    out = tmp_path / "certs" / "scb"
    umask = os.umask(0o077)
    try:
        _writable_dir(out)
    finally:
        os.umask(umask)

    modes = [stat.S_IMODE(d.stat().st_mode) for d in (out.parent, out)]
    assert modes == [0o755, 0o755]


def test_the_key_group_reads_the_key_through_live_even_under_umask_077(authority):
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    daemon = grp.getgrnam("daemon").gr_gid
    nobody = 65534
    # Under /tmp, not tmp_path: pytest's own 0700 dirs would lock anyone out.
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        lineage = Lineage(Path(scratch, "scb"), NAME)
        key_pem, chain = new_version(authority)
        umask = os.umask(0o077)
        try:
            lineage.write_version(key_pem, chain, key_group="daemon")
        finally:
            os.umask(umask)
        key = lineage.live_dir / "privkey.pem"

        def read_as(gid: int) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["cat", str(key)],
                user=nobody,
                group=gid,
                extra_groups=[],
                capture_output=True,
            )

        member, stranger = read_as(daemon), read_as(nobody)

    assert (member.returncode, member.stdout) == (0, key_pem)
    assert stranger.returncode != 0
    assert b"Permission denied" in stranger.stderr


def test_an_unknown_key_group_is_refused_before_anything_is_written(
    tmp_path, authority
):
    lineage = Lineage(tmp_path, NAME)

    with pytest.raises(ConfigError, match="'no-such-group-scb': no such group"):
        lineage.write_version(*new_version(authority), key_group="no-such-group-scb")

    assert lineage.versions() == []


def test_a_live_directory_scb_did_not_make_is_left_alone(tmp_path, authority):
    lineage = Lineage(tmp_path, NAME)
    lineage.live_dir.mkdir(parents=True)
    (lineage.live_dir / "cert.pem").write_text("the operator's own file")

    with pytest.raises(ConfigError, match="is not SCB's link"):
        lineage.write_version(*new_version(authority))

    assert (lineage.live_dir / "cert.pem").read_text() == "the operator's own file"


class Crash(Exception):
    """The process died just before this filesystem call."""


# Every os call through which lineage.py (and write_atomic) changes the disk.
MUTATIONS = ("open", "write", "fsync", "replace", "symlink", "unlink", "rmdir", "mkdir")


@contextmanager
def crash_before_step(monkeypatch, step: int, observe):
    """Raise Crash at the `step`-th mutating call; run `observe` before each."""
    calls = 0
    originals = {name: getattr(os, name) for name in MUTATIONS}

    def wrapped(name):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            observe()
            if calls == step:
                raise Crash(f"before os.{name} #{step}")
            return originals[name](*args, **kwargs)

        return call

    with monkeypatch.context() as patch:
        for name in MUTATIONS:
            patch.setattr(os, name, wrapped(name))
        yield


@pytest.mark.parametrize("had_version", [True, False], ids=["renewal", "first"])
def test_a_crash_at_any_step_leaves_the_old_set_or_the_new_one(
    tmp_path, authority, monkeypatch, had_version
):
    template = tmp_path / "template"
    old = new_version(authority) if had_version else None
    if old:
        Lineage(template, NAME).write_version(*old)
    else:
        template.mkdir()
    new = new_version(authority)
    expected = {None if old is None else _pair(old), _pair(new)}

    step = 0
    while True:
        step += 1
        base = tmp_path / f"crash{step}"
        shutil.copytree(template, base, symlinks=True)
        lineage = Lineage(base, NAME)

        def observe(lineage=lineage):
            # Whatever a reader opens through live/ at this instant must match.
            assert live_pair(lineage) in expected

        try:
            with crash_before_step(monkeypatch, step, observe):
                lineage.write_version(*new)
        except Crash:
            assert live_pair(lineage) in expected
            _recover_and_check(lineage, authority, old)
            continue
        break

    assert live_pair(lineage) == _pair(new)
    assert step > 10  # the loop crashed at every step of a real switch


def _pair(version) -> tuple[bytes, bytes]:
    key_pem, chain = version
    key = load_private_key(key_pem)
    return spki_der(key.public_key()), spki_der(chain[0].public_key())


def _recover_and_check(lineage: Lineage, authority, old) -> None:
    """The next renewal after a crash works, and version 1 is still intact."""
    after = new_version(authority)
    version = lineage.write_version(*after)

    assert live_pair(lineage) == _pair(after)
    assert lineage.current_version() == version == max(lineage.versions())
    if old is not None:
        assert (lineage.archive_dir / "privkey1.pem").read_bytes() == old[0]


def test_renewal_settings_round_trip(tmp_path):
    lineage = Lineage(tmp_path, NAME)
    settings = RenewalSettings(
        names=[NAME, "www.home.arpa"],
        server="ca.home.arpa:8443",
        key_type="rsa-3072",
        challenge_port=844,
        challenge_bind="192.168.1.5",
        validity_days=30,
        subject="O=Lab",
        deploy_hook="systemctl reload nginx",
        reuse_key=True,
        key_group="www-data",
        version=3,
    )

    lineage.save_settings(settings)

    assert Lineage(tmp_path, NAME).load_settings() == settings
    assert [found.name for found in all_lineages(tmp_path)] == [NAME]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("names = []", "key names = []: must be a non-empty list of names"),
        ('names = ["Web.home.arpa"]', "'Web.home.arpa' is not in lower-case"),
        ('names = ["*.home.arpa"]', "wildcard '*.home.arpa' refused"),
        ("names = [1]", "name 1 is not a string"),
        ('key_type = "dsa"', "key key_type = 'dsa': must be one of ec-p256"),
        ("challenge_port = 0", "key challenge_port = 0: must be 1 to 65535"),
        ("validity_days = -1", "key validity_days = -1: must not be negative"),
        ('reuse_key = "yes"', "key reuse_key = 'yes': must be true or false"),
        ('server = "nowhere"', "key server = 'nowhere': 'nowhere' needs a port"),
        ("colour = 1", "key colour is unknown"),
    ],
)
def test_a_bad_renewal_file_names_the_file_the_key_and_the_value(
    tmp_path, line, problem
):
    path = tmp_path / "renewal" / f"{NAME}.toml"
    path.parent.mkdir()
    lines = {"names": f'names = ["{NAME}"]', "server": 'server = "ca:8443"'}
    lines[line.split(" ")[0]] = line
    path.write_text("\n".join(lines.values()) + "\n")

    with pytest.raises(ConfigError) as raised:
        Lineage(tmp_path, NAME).load_settings()

    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_an_unparsable_renewal_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "renewal" / f"{NAME}.toml"
    path.parent.mkdir()
    path.write_text("names = [\n")

    with pytest.raises(ConfigError, match=f"{path}: cannot be read"):
        Lineage(tmp_path, NAME).load_settings()


def test_a_missing_renewal_key_is_named(tmp_path):
    path = Path(tmp_path, "renewal", f"{NAME}.toml")
    path.parent.mkdir()
    path.write_text(f'names = ["{NAME}"]\n')

    with pytest.raises(ConfigError, match="key server is missing"):
        Lineage(tmp_path, NAME).load_settings()
