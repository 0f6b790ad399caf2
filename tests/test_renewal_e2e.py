"""Renewal end to end: a real agent, real hosts, real files and real hooks.

One agent (with its CRL served over HTTP) serves the module; every test gets a
host of its own (its own live/, archive/, renewal/ and hooks directory) and
names of its own, so tests do not see each other's lineages.
"""

import grp
import hashlib
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scb_core.keys import load_private_key
from scb_core.store import format_serial
from tests.lab import Agent, DnsThread, Host, free_port, run_scb


# Generous limits: the module issues many certificates from 127.0.0.1, and
# the failing-lineage test must not get the address banned for the others.
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("renewal")
    dns = DnsThread({}).start()
    agent = Agent(
        root / "agent", [dns.address], "--http-listen", f"127.0.0.1:{free_port()}"
    )
    agent.dns = dns
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        dns.stop()


@pytest.fixture
def host(lab, tmp_path) -> Host:
    return Host(tmp_path / "host", lab)


@pytest.fixture
def names(lab, request):
    """names("web") -> a name unique to this test, resolving to 127.0.0.2."""

    def make(label: str) -> str:
        test = request.node.name.replace("_", "-").replace("[", "-").strip("]-")
        name = f"{label}.{test[-40:].strip('-')}.home.arpa"
        # Not 127.0.0.1: the agent listens there, and policy refuses it.
        lab.dns.records[name] = ["127.0.0.2"]
        return name

    return make


def request_ok(host: Host, *args: str) -> None:
    result = host.request(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def renew(host: Host, *args: str):
    return run_scb(host.env, "renew", *args, timeout=300)


def live_cert(host: Host, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((host.live(name) / "cert.pem").read_bytes())


def live_version(host: Host, name: str) -> str:
    """Which archived file live/NAME/cert.pem resolves to, e.g. cert2.pem."""
    resolved = (host.live(name) / "cert.pem").resolve()
    assert resolved.parent == host.config_dir / "archive" / name
    return resolved.name


def public_key_der(key_or_cert) -> bytes:
    return key_or_cert.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )


def assert_live_key_matches_cert(host: Host, name: str) -> None:
    key = load_private_key((host.live(name) / "privkey.pem").read_bytes())
    assert public_key_der(key) == public_key_der(live_cert(host, name))


def hook_recorder(log: Path) -> str:
    """A deploy hook (shell) that appends its SCB_* environment to `log`."""
    return f'printf "%s|%s\\n" "$SCB_LINEAGE" "$SCB_DOMAINS" >> {log}'


def hook_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def tree(base: Path) -> dict[str, tuple]:
    """Every path under `base` with its kind, mode, owner and content/target."""
    listing = {}
    for path in sorted(base.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            what = ("link", os.readlink(path))
        elif path.is_dir():
            what = ("dir",)
        else:
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        listing[str(path.relative_to(base))] = (
            *what,
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
            info.st_mtime_ns,
        )
    return listing


def agent_certificates(lab: Agent, name: str) -> list[dict]:
    return lab.call("certificates", search=name)["rows"]


def summary(stdout: str) -> dict[str, str]:
    """renew's closing summary: lineage name -> its outcome (and hook lines)."""
    outcomes: dict[str, str] = {}
    last = ""
    for line in stdout.split("summary:\n", 1)[1].splitlines():
        name, _, outcome = line.strip().partition("  ")
        if line.startswith("  ") and not line[2].isspace():
            last = name
            outcomes[name] = outcome.strip()
        else:
            outcomes[last] += "\n" + line.strip()
    return outcomes


def edit_renewal(host: Host, name: str, **values) -> None:
    path = host.config_dir / "renewal" / f"{name}.toml"
    settings = tomllib.loads(path.read_text())
    settings.update(values)
    path.write_text(tomli_w.dumps(settings))


def test_renew_moves_live_to_version_2_keeps_version_1_and_runs_the_hook_once(
    host, names, tmp_path
):
    name, alias = names("web"), names("www")
    log = tmp_path / "hook.log"
    request_ok(
        host, name, alias, "--validity-days", "1", "--deploy-hook", hook_recorder(log)
    )
    assert hook_lines(log) == [f"{host.live(name)}|{name} {alias}"]
    first = live_cert(host, name)
    log.unlink()

    # A one-day certificate is not yet due by thirds; --days 2 makes it so.
    result = renew(host, "--days", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert live_version(host, name) == "cert2.pem"
    archive = host.config_dir / "archive" / name
    for kind in ("cert", "chain", "fullchain", "privkey"):
        assert (archive / f"{kind}1.pem").is_file()
        assert (archive / f"{kind}2.pem").is_file()
    assert x509.load_pem_x509_certificate((archive / "cert1.pem").read_bytes()) == first
    renewed = live_cert(host, name)
    assert renewed.serial_number != first.serial_number
    assert_live_key_matches_cert(host, name)
    assert hook_lines(log) == [f"{host.live(name)}|{name} {alias}"]
    assert summary(result.stdout)[name].startswith("renewed: version 2, serial ")

    settings = tomllib.loads((host.config_dir / "renewal" / f"{name}.toml").read_text())
    assert settings["version"] == 2
    assert settings["names"] == [name, alias]
    assert settings["validity_days"] == 1


def test_renewal_file_records_what_renew_needs(host, names):
    name = names("api")
    port = free_port()
    result = host.request(
        name,
        "--key-type",
        "ec-p384",
        "--validity-days",
        "30",
        "--subject",
        "O=Lab,C=DE",
        "--challenge-bind",
        "127.0.0.2",
        "--deploy-hook",
        "true",
        port=port,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    settings = tomllib.loads((host.config_dir / "renewal" / f"{name}.toml").read_text())
    assert settings == {
        "names": [name],
        "server": host.agent.address,
        "key_type": "ec-p384",
        "challenge_port": port,
        "challenge_bind": "127.0.0.2",
        "validity_days": 30,
        "subject": "O=Lab,C=DE",
        "deploy_hook": "true",
        "reuse_key": False,
        "key_group": "",
        "version": 1,
    }


def test_dry_run_talks_to_the_agent_but_changes_nothing_and_runs_no_hook(
    lab, host, names, tmp_path
):
    name = names("db")
    log = tmp_path / "hook.log"
    request_ok(host, name, "--validity-days", "1", "--deploy-hook", hook_recorder(log))
    log.unlink()
    before = tree(host.config_dir)
    issued_before = agent_certificates(lab, name)

    result = renew(host, "--dry-run", "--days", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(result.stdout)[name].startswith("dry run ok: serial ")
    assert tree(host.config_dir) == before
    assert not log.exists()
    issued_after = agent_certificates(lab, name)
    assert len(issued_after) == len(issued_before) + 1
    dry_serial = issued_after[0]["serial"]
    dry_request = lab.call("request", request_id=issued_after[0]["request_id"])
    assert dry_request["names"] == [name]
    assert f"serial {dry_serial}" in result.stdout
    assert format_serial(live_cert(host, name).serial_number) != dry_serial


def test_one_unreachable_lineage_fails_while_the_others_renew(host, names):
    good, bad, other = names("good"), names("bad"), names("other")
    for name in (good, bad, other):
        request_ok(host, name, "--validity-days", "1")
    # The agent reaches the name at 127.0.0.2, but the host now answers only
    # on 127.0.0.3: the challenge port is unreachable for that lineage.
    edit_renewal(host, bad, challenge_bind="127.0.0.3")

    result = renew(host, "--days", "2")

    assert result.returncode == 1, result.stdout + result.stderr
    assert live_version(host, good) == "cert2.pem"
    assert live_version(host, other) == "cert2.pem"
    assert live_version(host, bad) == "cert1.pem"
    assert not (host.config_dir / "archive" / bad / "cert2.pem").exists()
    outcomes = summary(result.stdout)
    assert outcomes[good].startswith("renewed: version 2, serial ")
    assert outcomes[other].startswith("renewed: version 2, serial ")
    assert outcomes[bad].startswith("failed: connect_failed: ")
    assert len(outcomes) == 3
    assert "1 of 3 failed" in result.stderr


def test_lineages_that_are_not_due_are_skipped_and_force_renews_them(host, names):
    name = names("calm")
    request_ok(host, name)  # the default 90 days: two thirds left

    skipped = renew(host)

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert summary(skipped.stdout) == {name: "not due: 89 days left"}
    assert live_version(host, name) == "cert1.pem"
    assert not (host.config_dir / "archive" / name / "cert2.pem").exists()

    forced = renew(host, "--force")

    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"{name}: renewing (forced)" in forced.stdout
    assert live_version(host, name) == "cert2.pem"


def test_renew_names_only_the_lineages_asked_for(host, names):
    picked, left = names("picked"), names("left")
    request_ok(host, picked)
    request_ok(host, left)

    result = renew(host, "--force", picked)

    assert result.returncode == 0, result.stdout + result.stderr
    assert live_version(host, picked) == "cert2.pem"
    assert live_version(host, left) == "cert1.pem"
    assert left not in result.stdout


def test_renew_of_an_unknown_lineage_names_it_and_changes_nothing(host, names):
    name = names("known")
    request_ok(host, name)
    before = tree(host.config_dir)

    result = renew(host, "--force", "nosuch.home.arpa")

    assert result.returncode == 2
    assert "'nosuch.home.arpa'" in result.stderr and name in result.stderr
    assert tree(host.config_dir) == before


def test_every_renewal_makes_a_new_key_unless_reuse_key(host, names):
    fresh, kept = names("fresh"), names("kept")
    request_ok(host, fresh)
    request_ok(host, kept, "--reuse-key")
    fresh_key = public_key_der(live_cert(host, fresh))
    kept_key = public_key_der(live_cert(host, kept))

    result = renew(host, "--force")

    assert result.returncode == 0, result.stdout + result.stderr
    assert public_key_der(live_cert(host, fresh)) != fresh_key
    assert public_key_der(live_cert(host, kept)) == kept_key
    for name in (fresh, kept):
        assert live_version(host, name) == "cert2.pem"
        assert_live_key_matches_cert(host, name)


def test_a_revoked_certificate_is_renewed_at_once_with_a_new_key(lab, host, names):
    name = names("leaked")
    request_ok(host, name, "--reuse-key")
    cert = live_cert(host, name)
    lab.admin("revoke", format_serial(cert.serial_number), "--reason", "keyCompromise")

    result = renew(host)  # neither --force nor --days: not due by time

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: renewing (revoked: the CA's CRL lists it)" in result.stdout
    assert live_version(host, name) == "cert2.pem"
    assert public_key_der(live_cert(host, name)) != public_key_der(cert)
    assert_live_key_matches_cert(host, name)
    settings = tomllib.loads((host.config_dir / "renewal" / f"{name}.toml").read_text())
    assert settings["reuse_key"] is True  # kept for the renewals after this one


def test_a_missing_live_certificate_is_renewed(host, names):
    name = names("lost")
    request_ok(host, name)
    (host.config_dir / "archive" / name / "cert1.pem").unlink()

    result = renew(host)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: renewing (no live cert.pem)" in result.stdout
    assert live_version(host, name) == "cert2.pem"


def test_a_failing_hook_is_reported_and_does_not_undo_the_renewal(host, names):
    name = names("hooked")
    request_ok(host, name)
    edit_renewal(host, name, deploy_hook="echo reloading; exit 3")

    result = renew(host, "--force")

    assert result.returncode == 1
    outcome, hook = summary(result.stdout)[name].split("\n")
    assert outcome.startswith("renewed: version 2, serial ")
    assert hook == "deploy hook echo reloading; exit 3 failed with exit status 3"
    assert "\nreloading\n" in result.stdout  # the hook's own output is kept
    assert live_version(host, name) == "cert2.pem"
    assert_live_key_matches_cert(host, name)


def test_the_hooks_directory_runs_for_every_lineage(host, names, tmp_path):
    first, second = names("one"), names("two")
    request_ok(host, first)
    request_ok(host, second)
    hooks = host.config_dir / "renewal-hooks" / "deploy"
    hooks.mkdir(parents=True)
    log = tmp_path / "dir-hook.log"
    script = hooks / "10-record"
    script.write_text(f"#!/bin/sh\n{hook_recorder(log)}\n")
    script.chmod(0o755)
    (hooks / "README").write_text("not executable, so not run\n")

    result = renew(host, "--force")

    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(hook_lines(log)) == sorted(
        [f"{host.live(first)}|{first}", f"{host.live(second)}|{second}"]
    )


def test_certificates_lists_each_lineage_with_its_status(lab, host, names):
    kept, revoked = names("kept"), names("revoked")
    request_ok(host, kept)
    request_ok(host, revoked)
    serial = format_serial(live_cert(host, revoked).serial_number)
    lab.admin("revoke", serial, "--reason", "keyCompromise")

    result = run_scb(host.env, "certificates", "--json", check=True)

    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(listing) == {kept, revoked}
    assert listing[kept]["status"] == "valid"
    assert listing[kept]["revocation"] == "good"
    assert listing[kept]["names"] == [kept]
    assert listing[kept]["days_left"] == 89
    assert listing[kept]["serial"] == format_serial(live_cert(host, kept).serial_number)
    not_after = live_cert(host, kept).not_valid_after_utc
    assert listing[kept]["not_after"] == not_after.isoformat().replace("+00:00", "Z")
    assert listing[revoked]["status"] == "revoked"
    assert listing[revoked]["serial"] == serial

    text = run_scb(host.env, "certificates", check=True).stdout
    assert f"serial     {serial}" in text
    assert "status     revoked (CRL: revoked)" in text
    assert "status     valid (CRL: good)" in text


def test_a_renewal_due_by_days_shows_as_due_only_by_thirds(host, names):
    name = names("short")
    request_ok(host, name, "--validity-days", "1")

    listing = json.loads(run_scb(host.env, "certificates", "--json", check=True).stdout)

    # One day of one day left: not yet under a third, so valid; days_left 0.
    assert [(e["name"], e["status"], e["days_left"]) for e in listing] == [
        (name, "valid", 0)
    ]


def key_group() -> str:
    """A group this process may give files to: daemon as root, else its own."""
    return "daemon" if os.geteuid() == 0 else grp.getgrgid(os.getgid()).gr_name


def test_key_group_makes_key_files_0640_and_group_owned_across_renewals(host, names):
    group = key_group()
    gid = grp.getgrnam(group).gr_gid
    name, plain = names("grouped"), names("plain")
    request_ok(host, name, "--key-group", group)
    request_ok(host, plain)

    renew(host, "--force", name)

    archive = host.config_dir / "archive" / name
    for version in (1, 2):
        info = (archive / f"privkey{version}.pem").stat()
        assert stat.S_IMODE(info.st_mode) == 0o640
        assert info.st_gid == gid
        cert_mode = stat.S_IMODE((archive / f"cert{version}.pem").stat().st_mode)
        assert cert_mode == 0o644
    assert (host.live(name) / "privkey.pem").stat().st_gid == gid
    plain_key = host.config_dir / "archive" / plain / "privkey1.pem"
    assert stat.S_IMODE(plain_key.stat().st_mode) == 0o600


def test_an_unknown_key_group_is_refused_before_anything_is_issued(lab, host, names):
    name = names("nogroup")

    result = host.request(name, "--key-group", "no-such-group-scb")

    assert result.returncode == 2
    assert "'no-such-group-scb'" in result.stderr
    assert agent_certificates(lab, name) == []
    assert not (host.config_dir / "live" / name).exists()
