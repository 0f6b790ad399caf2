"""Garbage in every flag and config key: one line naming it, exit 2, no trace.

Also the files around the config: an agent.toml that cannot be read, CA keys
others can read (the agent refuses to start and says why), and a state dir
whose disk is full (a tiny tmpfs; skipped where mounting is not allowed).
"""

import os
import shutil
import subprocess
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from scb_core.client_config import ClientConfig, save_client_config
from scb_core.config import SECTIONS, AgentConfig, load_agent_config
from scb_core.errors import ConfigError
from tests import hostile
from tests.lab import Agent, DnsThread, Host, dirs_env, run_scb

INIT = [
    "init",
    "--allow-domain",
    "home.arpa",
    "--resolver",
    "127.0.0.1:53",
    "--listen",
    "127.0.0.1:8443",
    "--server-name",
    "127.0.0.1",
]


def assert_one_line_naming(result, *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, result.stderr


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ca")
    run_scb(dirs_env(root), *INIT, check=True)
    return root


@pytest.fixture
def ca_copy(ca, tmp_path) -> Path:
    copy = tmp_path / "ca"
    shutil.copytree(ca, copy, ignore=shutil.ignore_patterns("admin.sock"))
    return copy


# `init` flags. -----------------------------------------------------------------

INIT_GARBAGE = {
    "--listen": (["--listen", "nope"], "listen", "'nope'"),
    "--listen port": (["--listen", "1.2.3.4:99999"], "listen", "99999"),
    "--allow-domain": (["--allow-domain", "Bad_Domain"], "Bad_Domain"),
    "--allow-network": (["--allow-network", "300.0.0.0/8"], "300.0.0.0/8"),
    "--resolver": (["--resolver", "abc"], "resolver 'abc'"),
    "--challenge-ports": (["--challenge-ports", "5-1"], "'5-1'"),
    "--challenge-ports word": (["--challenge-ports", "low-high"], "'low-high'"),
    "--http-listen": (["--http-listen", "x"], "http_listen", "'x'"),
    "--crl-url": (["--crl-url", "not a url"], "crl_url", "'not a url'"),
    "--key-type": (["--key-type", "dsa"], "--key-type", "'dsa'"),
    "--approval": (["--approval", "maybe"], "--approval", "'maybe'"),
    "--import-cert": (
        ["--import-cert", "/nonexistent.pem", "--import-key", "/nonexistent.key"],
        "/nonexistent",
    ),
    "--passphrase-file": (["--passphrase-file", "/nonexistent"], "/nonexistent"),
    "--server-name": (["--server-name", "bad name!"], "'bad name!'"),
    "--name": (["--name", ""], "key name", "1 to 64 characters"),
}


@pytest.mark.parametrize(
    "flags, words",
    [(case[0], case[1:]) for case in INIT_GARBAGE.values()],
    ids=INIT_GARBAGE.keys(),
)
def test_init_names_the_garbage_flag(tmp_path, flags, words):
    result = run_scb(dirs_env(tmp_path), *INIT, *flags)

    assert_one_line_naming(result, *words)
    assert not (tmp_path / "state" / "ca" / "root.key").exists()


# `request` and `renew` flags, on a host with a pinned root. ---------------------


@pytest.fixture
def host(ca, tmp_path) -> dict:
    env = dirs_env(tmp_path)
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(ca / "state" / "ca" / "root.pem", config / "root.pem")
    # Nothing listens on port 1: a flag checked late would fail to connect.
    save_client_config(ClientConfig("127.0.0.1:1"), config / "client.toml")
    return env


REQUEST_GARBAGE = {
    "--challenge-port word": (["--challenge-port", "x"], "--challenge-port", "'x'"),
    "--challenge-port 0": (["--challenge-port", "0"], "--challenge-port 0"),
    "--challenge-port 70000": (["--challenge-port", "70000"], "70000"),
    "--validity-days word": (["--validity-days", "x"], "--validity-days", "'x'"),
    "--validity-days 0": (["--validity-days", "0"], "--validity-days 0"),
    "--validity-days -5": (["--validity-days", "-5"], "--validity-days -5"),
    "--subject": (["--subject", "X=1"], "subject part 'X=1'"),
    "--subject empty value": (["--subject", "O="], "subject part 'O='"),
    "--server": (["--server", "nope"], "'nope'"),
    "--server port": (["--server", "127.0.0.1:0"], "127.0.0.1:0"),
    "--key-type": (["--key-type", "rsa-1024"], "--key-type", "'rsa-1024'"),
    "--key-group": (["--key-group", "no-such-group-x"], "no-such-group-x"),
    "--hook-timeout word": (["--hook-timeout", "x"], "--hook-timeout", "'x'"),
    "--hook-timeout -5": (["--hook-timeout", "-5"], "--hook-timeout -5"),
    "name": (["bad name!"], "'bad name!'"),
    "wildcard name": (["*.home.arpa"], "'*.home.arpa'"),
}


@pytest.mark.parametrize(
    "flags, words",
    [(case[0], case[1:]) for case in REQUEST_GARBAGE.values()],
    ids=REQUEST_GARBAGE.keys(),
)
def test_request_names_the_garbage_flag(host, flags, words):
    names = [] if any(not f.startswith("-") for f in flags[::2]) else ["a.home.arpa"]
    result = run_scb(host, "request", *names, *flags)

    assert_one_line_naming(result, *words)


def test_a_request_from_a_host_never_bootstrapped_says_to_bootstrap(tmp_path):
    env = dirs_env(tmp_path)
    result = run_scb(env, "request", "a.home.arpa", "--server", "127.0.0.1:8443")

    assert_one_line_naming(result, "no pinned root", "scb-agent bootstrap")


RENEW_GARBAGE = {
    "--days word": (["--days", "x"], "--days", "'x'"),
    "--days -1": (["--days", "-1"], "--days -1"),
    "--hook-timeout": (["--hook-timeout", "0"], "--hook-timeout 0"),
    "unknown name": (["never.home.arpa"], "never.home.arpa"),
}


@pytest.mark.parametrize(
    "flags, words",
    [(case[0], case[1:]) for case in RENEW_GARBAGE.values()],
    ids=RENEW_GARBAGE.keys(),
)
def test_renew_names_the_garbage_flag(host, flags, words):
    result = run_scb(host, "renew", *flags)

    assert_one_line_naming(result, *words)


# agent.toml keys. -------------------------------------------------------------

# Values of the right type that no key of that name can use.
SEMANTIC_GARBAGE = {
    "listen": "nowhere",
    "server_names": ["bad name!"],
    "allowed_domains": ["*.home.arpa"],
    "allowed_networks": ["10.0.0.0/33"],
    "challenge_ports": "1023-1",
    "resolvers": ["dns.example"],
    "caa_identities": ["bad identity with spaces"],
    "approval": "sometimes",
    "manual_approval_domains": ["UPPER.case"],
    "approval_timeout": 0,
    "http_listen": "127.0.0.1",
    "crl_url": "ftp:/x",
    "key_type": "dsa",
    "default_validity_days": 0,
    "max_validity_days": 398,
    "max_names": 0,
    "name": "",
}


def top_level_keys() -> list[str]:
    return [f.name for f in fields(AgentConfig) if f.name not in SECTIONS]


def section_keys() -> list[tuple[str, str]]:
    return [(s, f.name) for s, cls in SECTIONS.items() for f in fields(cls)]


def write_config(ca_copy: Path, change: dict) -> Path:
    import tomli_w

    path = ca_copy / "config" / "agent.toml"
    config = tomllib.loads(path.read_text())
    for dotted, value in change.items():
        section, _, key = dotted.rpartition(".")
        (config.setdefault(section, {}) if section else config)[key] = value
    path.write_text(tomli_w.dumps(config))
    return path


@pytest.mark.parametrize("key", top_level_keys())
def test_an_agent_toml_key_of_the_wrong_type_is_named(ca_copy, key):
    path = write_config(ca_copy, {key: {"garbage": 1}})

    with pytest.raises(ConfigError) as raised:
        load_agent_config(path)
    assert f"key {key} must be" in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("key", sorted(SEMANTIC_GARBAGE))
def test_an_agent_toml_key_with_an_unusable_value_is_named(ca_copy, key):
    path = write_config(ca_copy, {key: SEMANTIC_GARBAGE[key]})

    with pytest.raises(ConfigError) as raised:
        load_agent_config(path)
    assert f"key {key}" in str(raised.value)


def test_every_top_level_key_has_a_semantic_garbage_case():
    boolean = {"require_dnssec"}  # true and false are both fine
    # Any path is a path: serve says which cannot be read (tested below).
    read_at_start = {"passphrase_file"}
    assert set(top_level_keys()) - boolean - read_at_start == set(SEMANTIC_GARBAGE)


@pytest.mark.parametrize("section, key", section_keys())
@pytest.mark.parametrize("value", ["soon", -1, 0])
def test_an_agent_toml_section_key_given_garbage_is_named(ca_copy, section, key, value):
    path = write_config(ca_copy, {f"{section}.{key}": value})

    with pytest.raises(ConfigError) as raised:
        load_agent_config(path)
    assert f"key {section}.{key}" in str(raised.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("listen = 5\n", "key listen must be a string, got 5"),
        ("[timeouts]\nmessage = -1\n", "key timeouts.message = -1.0"),
        ("surprise = 1\n", "key surprise is unknown"),
        ("x = \n", "not valid TOML"),
        ("limits = 3\n", "key limits must be a table"),
    ],
)
def test_serve_refuses_a_garbage_agent_toml_in_one_line(ca_copy, text, words):
    (ca_copy / "config" / "agent.toml").write_text(text)

    assert_one_line_naming(run_scb(dirs_env(ca_copy), "serve", timeout=20), words)


def test_serve_refuses_an_agent_toml_that_is_not_utf8(ca_copy):
    (ca_copy / "config" / "agent.toml").write_bytes(b"\xff\xfe")

    result = run_scb(dirs_env(ca_copy), "serve", timeout=20)

    assert_one_line_naming(result, "agent.toml", "not valid TOML")


def test_serve_refuses_an_agent_toml_it_cannot_read(ca_copy):
    path = ca_copy / "config" / "agent.toml"
    path.unlink()
    path.mkdir()  # unreadable even for root, unlike chmod 000

    result = run_scb(dirs_env(ca_copy), "serve", timeout=20)

    assert_one_line_naming(result, str(path), "cannot be read")


def test_serve_names_a_passphrase_file_it_cannot_read(ca_copy):
    write_config(ca_copy, {"passphrase_file": "/nonexistent/passphrase"})

    result = run_scb(dirs_env(ca_copy), "serve", timeout=20)

    assert_one_line_naming(result, "passphrase file /nonexistent/passphrase")


@pytest.mark.parametrize("key_file", ["issuer.key", "root.key", "server.key"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_serve_refuses_a_ca_key_others_can_read(ca_copy, key_file, mode):
    path = ca_copy / "state" / "ca" / key_file
    path.chmod(mode)

    result = run_scb(dirs_env(ca_copy), "serve", timeout=20)

    assert_one_line_naming(result, "refusing to start", str(path), f"{mode:04o}")


# A full disk under the state dir. -------------------------------------------


@pytest.fixture
def tiny_state(tmp_path):
    """A state dir on a 2 MiB tmpfs, if this machine lets us mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the disk says no; return the file to free it again."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_state_disk_fails_requests_clearly_and_recovers(tmp_path, tiny_state):
    dns = DnsThread({"full.home.arpa": ["127.0.0.2"]}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    # The state dir moves onto the tiny disk, CA and all.
    shutil.copytree(agent.state_dir, tiny_state / "state")
    shutil.rmtree(agent.state_dir)
    agent.state_dir.symlink_to(tiny_state / "state")
    root_pem = agent.state_dir / "ca" / "root.pem"
    agent.start()
    try:
        filler = fill(tiny_state)
        last, _ = hostile.issue(agent.port, root_pem, "full.home.arpa")
        assert last["type"] == "error" and last["code"] == "internal", last
        assert agent.process.poll() is None
        assert "database or disk is full" in agent.log.read_text()

        filler.unlink()
        dns.records["again.home.arpa"] = ["127.0.0.2"]
        last, _ = hostile.issue(agent.port, root_pem, "again.home.arpa")
        assert last["type"] == "certificate", last
    finally:
        agent.stop()
        dns.stop()
    assert run_scb(agent.env, "check").returncode == 0


def test_a_full_disk_under_the_host_fails_request_in_one_line(tmp_path, tiny_state):
    name = "disk.home.arpa"
    dns = DnsThread({name: ["127.0.0.2"]}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.start()
    try:
        host = Host(tiny_state / "host", agent)
        filler = fill(tiny_state)
        result = host.request(name)

        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "No space left on device" in result.stderr.strip().splitlines()[-1]
        assert not (host.live(name) / "cert.pem").exists()

        filler.unlink()
        assert host.request(name).returncode == 0
        assert (host.live(name) / "cert.pem").exists()
    finally:
        agent.stop()
        dns.stop()
