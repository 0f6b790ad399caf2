"""The systemd units `scb-agent units` prints and installs.

Checked twice: by a strict parser of our own (sections, Key=Value lines, the
settings the design promises), and by `systemd-analyze verify` when systemd
is installed, which knows every directive and value systemd accepts.
"""

import re
import subprocess
from pathlib import Path

import pytest

from scb_agent.units_cmd import UNITS
from scb_core.authority_files import CREDENTIAL_NAME, read_passphrase
from tests.helpers import require_program
from tests.lab import Agent, DnsThread, dirs_env, run_scb

SECTION = re.compile(r"^\[([A-Za-z]+)\]$")
SETTING = re.compile(r"^([A-Za-z][A-Za-z0-9]*)=(.*)$")


def require_systemd_analyze() -> str:
    return require_program("systemd-analyze", "systemd", "SCB_REQUIRE_SYSTEMD")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value; anything else on a line is an error."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {number}: continuation lines"
        if match := SECTION.match(line):
            assert match[1] not in sections, f"line {number}: [{match[1]}] again"
            current = sections[match[1]] = {}
            continue
        match = SETTING.match(line)
        assert match, f"line {number}: not a section or Key=Value: {line!r}"
        assert current is not None, f"line {number}: setting before any section"
        current.setdefault(match[1], []).append(match[2])
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    assert len(section.get(key, [])) == 1, f"{key} is set {section.get(key)}"
    return section[key][0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("units")
    env = dirs_env(target)
    result = run_scb(env, "units", "--install", str(target), check=True)
    wrote = [f"wrote {target / name}" for name in UNITS]
    assert result.stdout.splitlines()[:3] == wrote
    return target


def unit(installed: Path, name: str) -> dict[str, dict[str, list[str]]]:
    return parse_unit((installed / name).read_text())


def test_units_prints_exactly_what_install_writes(installed, tmp_path):
    printed = run_scb(dirs_env(tmp_path), "units", check=True).stdout

    parts = re.split(r"^# --- (\S+) ---\n", printed, flags=re.M)
    assert parts[0] == ""
    shown = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert list(shown) == list(UNITS)
    for name, text in shown.items():
        assert text == (installed / name).read_text() + "\n"


def test_exec_start_points_at_the_installed_scb_agent(installed):
    commands = {"scb-agent.service": "serve", "scb-renew.service": "renew"}
    for name, command in commands.items():
        program, *args = one(unit(installed, name)["Service"], "ExecStart").split()
        assert Path(program).is_absolute() and Path(program).name == "scb-agent"
        assert Path(program).is_file()
        assert args == [command]


def test_exec_can_name_another_scb_agent(tmp_path):
    printed = run_scb(
        dirs_env(tmp_path), "units", "--exec", "/opt/scb/bin/scb-agent", check=True
    ).stdout

    assert "ExecStart=/opt/scb/bin/scb-agent serve\n" in printed
    assert "ExecStart=/opt/scb/bin/scb-agent renew\n" in printed


def test_install_into_a_missing_directory_names_it(tmp_path):
    missing = tmp_path / "nowhere"

    result = run_scb(dirs_env(tmp_path), "units", "--install", str(missing))

    assert result.returncode == 2
    assert f"--install {missing}: not a directory" in result.stderr


def test_the_certifier_unit_is_hardened(installed):
    sections = unit(installed, "scb-agent.service")
    service = sections["Service"]

    assert set(sections) == {"Unit", "Service", "Install"}
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "StateDirectory") == "scb"
    assert one(service, "StateDirectoryMode") == "0700"
    assert one(service, "LoadCredential") == CREDENTIAL_NAME
    assert one(service, "CapabilityBoundingSet") == ""
    assert one(service, "PrivateDevices") == "yes"
    assert one(service, "UMask") == "0077"
    assert "ReadWritePaths" not in service  # only the state dir is writable
    environment = one(service, "Environment").split()
    assert "SCB_STATE_DIR=/var/lib/scb" in environment
    assert "SCB_CONFIG_DIR=/etc/scb" in environment
    assert one(sections["Install"], "WantedBy") == "multi-user.target"


def test_the_renewal_runs_once_per_start_and_only_from_its_timer(installed):
    sections = unit(installed, "scb-renew.service")
    service = sections["Service"]

    assert set(sections) == {"Unit", "Service"}  # no [Install]: the timer starts it
    assert one(service, "Type") == "oneshot"
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ReadWritePaths") == "/etc/scb"
    assert "SCB_CONFIG_DIR=/etc/scb" in one(service, "Environment").split()


def test_the_timer_fires_twice_a_day_with_a_random_delay(installed):
    sections = unit(installed, "scb-renew.timer")
    timer = sections["Timer"]

    assert set(sections) == {"Unit", "Timer", "Install"}
    assert one(timer, "OnCalendar") == "*-*-* 00,12:00:00"
    assert one(timer, "RandomizedDelaySec") == "12h"
    assert one(timer, "Persistent") == "true"
    assert "Unit" not in timer  # so it starts scb-renew.service, its namesake
    assert one(sections["Install"], "WantedBy") == "timers.target"


def test_the_timer_calendar_means_noon_and_midnight():
    analyze = require_systemd_analyze()

    result = subprocess.run(
        [analyze, "calendar", "--iterations=4", "*-*-* 00,12:00:00"],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    times = re.findall(r"\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d)", result.stdout)
    assert sorted(set(times)) == ["00:00:00", "12:00:00"]


def test_systemd_analyze_verify_accepts_every_unit(installed):
    analyze = require_systemd_analyze()

    result = subprocess.run(
        [analyze, "verify", *(str(installed / name) for name in UNITS)],
        capture_output=True,
        text=True,
    )

    # verify exits 0 even for unknown keys and bad values, but says so.
    assert result.returncode == 0, result.stderr
    complaints = [line for line in result.stderr.splitlines() if str(installed) in line]
    assert complaints == []


def test_verify_would_see_a_misspelt_directive(installed, tmp_path):
    """The check above can fail: a typo in a unit is reported on stderr."""
    analyze = require_systemd_analyze()
    broken = tmp_path / "scb-agent.service"
    text = (installed / "scb-agent.service").read_text()
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=strikt"))

    result = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True
    )

    assert "protect system value" in result.stderr.lower()


def test_systemd_rates_the_certifier_unit_well_hardened(installed):
    analyze = require_systemd_analyze()

    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(installed / "scb-agent.service")],
        capture_output=True,
        text=True,
    )
    if "--offline" in result.stderr:
        pytest.skip(f"this systemd-analyze has no --offline: {result.stderr.strip()}")

    found = re.search(
        r"Overall exposure level for scb-agent.service: ([\d.]+)", result.stdout
    )
    assert found, result.stdout + result.stderr
    # systemd's scale runs 0 (locked down) to 10; below 2 it says "OK".
    assert float(found[1]) < 2.0, result.stdout


def test_the_credential_beats_the_passphrase_file_agent_toml_names(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_bytes(b"from systemd\n")
    unreadable = tmp_path / "root-only" / "passphrase"

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
        assert read_passphrase(str(unreadable)) == b"from systemd"
        patch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "empty"))
        with pytest.raises(ValueError, match=str(unreadable)):
            read_passphrase(str(unreadable))


def test_the_agent_starts_on_the_units_credential_alone(tmp_path):
    """As under scb-agent.service: the file init used is gone, the credential
    in $CREDENTIALS_DIRECTORY unlocks the CA key."""
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    dns = DnsThread({}).start()
    try:
        agent = Agent(
            tmp_path / "agent", [dns.address], "--passphrase-file", str(passphrase)
        )
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        passphrase.rename(credentials / CREDENTIAL_NAME)
        agent.env["CREDENTIALS_DIRECTORY"] = str(credentials)
        agent.start()
        try:
            assert agent.call("status")["ca"]
        finally:
            agent.stop()
    finally:
        dns.stop()
