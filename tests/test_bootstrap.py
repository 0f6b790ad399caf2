"""`scb-agent bootstrap` against a real agent: pin the root, or save nothing."""

import json
import socket
import ssl
import struct
import threading
import tomllib

import pytest
from cryptography import x509

from scb_core.authority_files import pem_of
from scb_core.ca import (
    create_root,
    fingerprint,
    format_fingerprint,
    issue_server_certificate,
)
from scb_core.keys import generate_key, private_key_pem
from tests.jasc_wire import frame
from tests.lab import Agent, DnsThread, dirs_env, free_port, run_scb


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    dns = DnsThread({}).start()
    agent = Agent(tmp_path_factory.mktemp("bootstrap") / "agent", [dns.address])
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        dns.stop()


def bootstrap(tmp_path, *args: str):
    return run_scb(dirs_env(tmp_path), "bootstrap", *args)


def agent_root(agent: Agent) -> bytes:
    return (agent.state_dir / "ca" / "root.pem").read_bytes()


def saved_files(tmp_path) -> list[str]:
    config = tmp_path / "config"
    return sorted(p.name for p in config.iterdir()) if config.exists() else []


@pytest.mark.parametrize(
    "spelling",
    [
        lambda hex_digits: hex_digits,
        lambda hex_digits: hex_digits.upper(),
        format_fingerprint,  # AA:BB:..., as openssl and the console print it
        lambda hex_digits: format_fingerprint(hex_digits).lower(),
    ],
    ids=["lower", "upper", "colons", "lower_colons"],
)
def test_matching_fingerprint_saves_the_root_and_the_server(agent, tmp_path, spelling):
    typed = spelling(agent.fingerprint)

    result = bootstrap(tmp_path, "--server", agent.address, "--fingerprint", typed)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "config" / "root.pem").read_bytes() == agent_root(agent)
    client = tomllib.loads((tmp_path / "config" / "client.toml").read_text())
    assert client == {"server": agent.address}
    assert format_fingerprint(agent.fingerprint) in result.stdout


def test_wrong_fingerprint_shows_expected_and_got_and_saves_nothing(agent, tmp_path):
    wrong = "ab" * 32

    result = bootstrap(tmp_path, "--server", agent.address, "--fingerprint", wrong)

    assert result.returncode == 1
    root = x509.load_pem_x509_certificate(agent_root(agent))
    assert f"expected {format_fingerprint(wrong)}" in result.stderr
    assert f"got {format_fingerprint(fingerprint(root))}" in result.stderr
    assert "nothing saved" in result.stderr
    assert saved_files(tmp_path) == []


def test_fingerprint_that_is_not_sha256_hex_is_refused_by_value(agent, tmp_path):
    result = bootstrap(tmp_path, "--server", agent.address, "--fingerprint", "abc1")

    assert result.returncode == 2
    assert "'abc1'" in result.stderr
    assert saved_files(tmp_path) == []


def test_agent_certificate_not_valid_for_the_address_used_saves_nothing(
    agent, tmp_path
):
    # The agent's TLS certificate names 127.0.0.1, not "localhost".
    server = f"localhost:{agent.port}"

    result = bootstrap(tmp_path, "--server", server, "--fingerprint", agent.fingerprint)

    assert result.returncode == 1
    assert "does not verify" in result.stderr
    assert "localhost" in result.stderr
    assert saved_files(tmp_path) == []


def test_unreachable_agent_fails_with_the_address(tmp_path):
    server = f"127.0.0.1:{free_port()}"

    result = bootstrap(tmp_path, "--server", server, "--fingerprint", "ab" * 32)

    assert result.returncode == 1
    assert "connect_failed" in result.stderr
    assert server in result.stderr
    assert saved_files(tmp_path) == []


class FakeAgent:
    """TLS on 127.0.0.1 with a cert from `root`; answers `root` with `pem`."""

    def __init__(self, tmp_path, pem: str):
        self.root_key = generate_key("ec-p256")
        self.root = create_root("Fake CA", self.root_key)
        key = generate_key("ec-p256")
        cert = issue_server_certificate(self.root, self.root_key, ["127.0.0.1"], key)
        (tmp_path / "fake.pem").write_bytes(pem_of(cert))
        (tmp_path / "fake.key").write_bytes(private_key_pem(key))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tmp_path / "fake.pem", tmp_path / "fake.key")
        self.pem = pem
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve_once, daemon=True)

    def __enter__(self) -> "FakeAgent":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.listener.close()
        self.thread.join(10)

    def _serve_once(self) -> None:
        conn, _ = self.listener.accept()
        with self.context.wrap_socket(conn, server_side=True) as tls:
            request = tls.makefile("rb")
            (length,) = struct.unpack(">I", request.read(4))
            request.read(length)
            tls.sendall(frame(json.dumps({"type": "root", "pem": self.pem}).encode()))


def test_root_that_is_not_one_certificate_saves_nothing(tmp_path):
    extra = create_root("Extra CA", generate_key("ec-p256"))
    fake = FakeAgent(tmp_path, "")
    fake.pem = (pem_of(fake.root) + pem_of(extra)).decode()

    with fake:
        result = bootstrap(
            tmp_path, "--server", fake.address, "--fingerprint", fingerprint(fake.root)
        )

    assert result.returncode == 1
    assert "2 certificates as its root" in result.stderr
    assert saved_files(tmp_path) == []


def test_root_that_is_not_pem_saves_nothing(tmp_path):
    with FakeAgent(tmp_path, "hello") as fake:
        result = bootstrap(
            tmp_path, "--server", fake.address, "--fingerprint", "ab" * 32
        )

    assert result.returncode == 1
    assert "not a PEM certificate" in result.stderr
    assert "Traceback" not in result.stderr
    assert saved_files(tmp_path) == []


def test_config_dir_that_cannot_be_made_is_named(agent, tmp_path):
    (tmp_path / "a-file").write_text("")
    env = dict(dirs_env(tmp_path), SCB_CONFIG_DIR=str(tmp_path / "a-file" / "scb"))

    result = run_scb(
        env, "bootstrap", "--server", agent.address, "--fingerprint", agent.fingerprint
    )

    assert result.returncode == 2
    assert "a-file/scb: cannot save the pinned root" in result.stderr
