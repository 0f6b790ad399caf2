"""Issuance end to end: a real agent process, real TLS, real DNS, real files.

One agent serves the module. It validates through two DNS responders that
normally agree, so the disagreement case needs no agent of its own. Hosts are
played by `scb-agent request` (the product's client) and by tests/jasc_wire
(a client of the tests' own that can misbehave). After every refusal the
test proves the agent still issues, and reads the request back from the
store through the admin socket.
"""

import base64
import json
import re
import signal
import stat
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scb_core.keys import generate_key
from scb_core.store import format_serial
from tests.helpers import (
    assert_is_leaf,
    make_csr,
    require_openssl,
    verify_with_cryptography,
)
from tests.jasc_wire import Responder, Wire, correct_answer, frame, key_authorization
from tests.lab import Agent, DnsThread, Host, free_port, run_scb

# The agent listens on 127.0.0.1 and refuses its own address: hosts live above.
HOST_ADDRESS = "127.0.0.2"


class Lab:
    def __init__(self, agent: Agent, host: Host, dns: list[DnsThread]):
        self.agent = agent
        self.host = host
        self.dns = dns
        self.tokens: list[str] = []  # every token handed out, for the log check

    @property
    def root_pem(self):
        return self.host.config_dir / "root.pem"

    def resolve(self, name: str, *addresses: str) -> None:
        for responder in self.dns:
            responder.records[name] = list(addresses or [HOST_ADDRESS])

    def wire(self) -> Wire:
        return Wire(self.agent.address, self.root_pem)

    def request_ids(self) -> set[str]:
        return {row["id"] for row in self.agent.call("requests", limit=500)}

    def new_requests(self, before: set[str]) -> list[dict]:
        rows = self.agent.call("requests", limit=500)
        return [
            self.agent.call("request", request_id=row["id"])
            for row in rows
            if row["id"] not in before
        ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("issuance")
    dns = [DnsThread({}).start(), DnsThread({}).start()]
    agent = Agent(root / "agent", [d.address for d in dns])
    # A silent challenge peer costs the challenge timeout: keep it short.
    agent.configure("timeouts", challenge=2.0)
    agent.configure(allowed_networks=["127.0.0.0/8", "::1/128"])
    agent.start()
    try:
        yield Lab(agent, Host(root / "host", agent), dns)
    finally:
        agent.stop()
        for responder in dns:
            responder.stop()


# Driving the agent with the tests' own client.


def converse(lab: Lab, names: list[str], answer=None, key=None, port=None):
    """One request over the wire; `answer(challenge, key)` plays the host.

    Returns the last message, the challenge and the stages in between.
    """
    csr, key = make_csr(names, key)
    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 1, "csr": csr})
        challenge = wire.receive()
        if challenge["type"] != "challenge":
            return challenge, None, []
        lab.tokens.append(challenge["token"])

        respond = (answer or correct_answer)(challenge, key.public_key())
        with Responder([HOST_ADDRESS], respond) as responder:
            wire.send({"type": "ready", "port": port or responder.port})
            final, stages = wire.final()
        assert wire.closed() or final["type"] == "certificate"
    return final, challenge, stages


def assert_refused(final: dict, code: str, *words: str) -> None:
    assert final["type"] == "error", final
    assert final["code"] == code, final
    for word in words:
        assert word in final["message"], final


def assert_still_issues(lab: Lab) -> None:
    lab.resolve("alive.home.arpa")
    final, _, stages = converse(lab, ["alive.home.arpa"])
    assert final["type"] == "certificate", final
    assert stages == ["resolving", "connecting", "signing"]


def assert_stored_failure(lab: Lab, before: set[str], code: str) -> dict:
    [row] = lab.new_requests(before)
    assert (row["outcome"], row["error_code"]) == ("failed", code), row
    assert row["serial"] is None
    assert row["stages"][0]["stage"] == "received"
    assert row["stages"][-1]["stage"] == "failed"
    return row


def issue_over_wire(lab: Lab, name: str) -> tuple[dict, dict]:
    lab.resolve(name)
    final, challenge, _ = converse(lab, [name])
    assert final["type"] == "certificate", final
    return final, challenge


# Success, through the product's own client.


def read_live(lab: Lab, name: str) -> dict[str, bytes]:
    live = lab.host.live(name)
    return {
        kind: (live / f"{kind}.pem").read_bytes()
        for kind in ("privkey", "cert", "chain", "fullchain")
    }


def openssl_verify(lab: Lab, name: str) -> subprocess.CompletedProcess:
    live = lab.host.live(name)
    return subprocess.run(
        [require_openssl(), "verify", "-x509_strict", "-purpose", "sslserver"]
        + ["-CAfile", str(lab.root_pem), "-untrusted", str(live / "chain.pem")]
        + [str(live / "cert.pem")],
        capture_output=True,
        text=True,
    )


def test_request_for_one_name_writes_certbot_layout_that_openssl_accepts(lab):
    lab.resolve("svc.home.arpa")

    result = lab.host.request("svc.home.arpa")

    assert result.returncode == 0, result.stdout + result.stderr
    files = read_live(lab, "svc.home.arpa")
    key_path = lab.host.live("svc.home.arpa") / "privkey.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(files["privkey"], None)
    [leaf] = x509.load_pem_x509_certificates(files["cert"])
    chain = x509.load_pem_x509_certificates(files["chain"])
    assert files["fullchain"] == files["cert"] + files["chain"]
    assert leaf.public_key() == key.public_key()
    assert_is_leaf(leaf, ["svc.home.arpa"])
    root = x509.load_pem_x509_certificate(lab.root_pem.read_bytes())
    verify_with_cryptography(leaf, chain, root, "svc.home.arpa")
    verified = openssl_verify(lab, "svc.home.arpa")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for stage in ("challenge", "resolving", "connecting", "signing"):
        assert stage in result.stdout
    assert f"issued serial {format_serial(leaf.serial_number)}" in result.stdout


def test_request_for_several_names_proves_every_address_and_covers_all(lab):
    names = ["web.home.arpa", "api.home.arpa", "db.home.arpa"]
    lab.resolve("web.home.arpa", "127.0.0.3")
    lab.resolve("api.home.arpa", "127.0.0.4")
    lab.resolve("db.home.arpa", "127.0.0.4", "127.0.0.5")
    before = lab.request_ids()

    result = lab.host.request(*names)

    assert result.returncode == 0, result.stdout + result.stderr
    [leaf] = x509.load_pem_x509_certificates(read_live(lab, names[0])["cert"])
    assert_is_leaf(leaf, names)
    verified = openssl_verify(lab, names[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    [row] = lab.new_requests(before)
    assert (row["outcome"], row["names"]) == ("issued", names)
    assert [s["stage"] for s in row["stages"]] == [
        "received",
        "resolving",
        "connecting",
        "signing",
        "issued",
    ]
    stored = lab.agent.call("certificate", serial=row["serial"])
    assert x509.load_pem_x509_certificate(stored["pem"].encode()) == leaf


@pytest.mark.parametrize(
    "name, second",
    [("pair.home.arpa", "127.0.0.6"), ("dual.home.arpa", "::1")],
    ids=["two A records", "A and AAAA"],
)
def test_every_distinct_address_gets_its_own_challenge_connection(
    lab, name, second
):
    lab.resolve(name, HOST_ADDRESS, second)
    csr, key = make_csr([name])

    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 1, "csr": csr})
        challenge = wire.receive()
        lab.tokens.append(challenge["token"])
        respond = correct_answer(challenge, key.public_key())
        with Responder([HOST_ADDRESS, second], respond) as responder:
            wire.send({"type": "ready", "port": responder.port})
            final, _ = wire.final()

    assert final["type"] == "certificate", final
    line = f"JASC/1 {challenge['request_id']}\n".encode()
    assert sorted(responder.lines) == [(HOST_ADDRESS, line), (second, line)]


def test_request_options_shape_the_key_subject_validity_and_place(lab, tmp_path):
    lab.resolve("opts.home.arpa")
    out = tmp_path / "certs"

    result = lab.host.request(
        "opts.home.arpa",
        "--key-type",
        "rsa-2048",
        "--subject",
        "O=Home Lab,OU=Ops,C=DE",
        "--validity-days",
        "30",
        "--challenge-bind",
        HOST_ADDRESS,
        "--out",
        str(out),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    live = out / "live" / "opts.home.arpa"
    key = serialization.load_pem_private_key((live / "privkey.pem").read_bytes(), None)
    leaf = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert leaf.public_key() == key.public_key()
    assert leaf.subject.rfc4514_string() == "C=DE,OU=Ops,O=Home Lab"
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 30 <= lifetime.days <= 31
    assert_is_leaf(leaf, ["opts.home.arpa"])
    assert not lab.host.live("opts.home.arpa").exists()


def test_failed_request_prints_the_servers_code_and_exits_non_zero(lab):
    before = lab.request_ids()

    result = lab.host.request("svc.example.com")

    assert result.returncode == 1
    assert "error policy_denied" in result.stderr
    assert "svc.example.com" in result.stderr
    assert not lab.host.live("svc.example.com").exists()
    assert_stored_failure(lab, before, "policy_denied")
    assert_still_issues(lab)


def test_bad_request_options_are_refused_before_the_agent_is_asked(lab, tmp_path):
    lab.resolve("early.home.arpa")
    (tmp_path / "a-file").write_text("not a directory")
    before = lab.request_ids()

    bad_out = lab.host.request(
        "early.home.arpa", "--out", str(tmp_path / "a-file" / "certs")
    )
    bad_days = lab.host.request("early.home.arpa", "--validity-days", "0")
    bad_port = run_scb(
        lab.host.env, "request", "early.home.arpa", "--challenge-port", "0"
    )

    assert bad_out.returncode == 2, bad_out.stderr
    assert "a-file/certs: cannot hold the certificate files" in bad_out.stderr
    assert bad_days.returncode == 2, bad_days.stderr
    assert "--validity-days 0" in bad_days.stderr
    assert bad_port.returncode == 2, bad_port.stderr
    assert "--challenge-port 0" in bad_port.stderr
    assert lab.new_requests(before) == []


# Refusals of the request itself, before any DNS or network work.


def tampered_csr(names: list[str]) -> str:
    """A CSR whose signature no longer matches its contents."""
    csr_pem, _ = make_csr(names)
    der = bytearray(
        x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-1] ^= 0x01  # inside the signature's s value
    body = base64.encodebytes(bytes(der)).decode()
    label = "CERTIFICATE REQUEST"
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


def rsa_1024_csr(names: list[str]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# case: (CSR builder, code, word in the message, names the store records)
REFUSED_CSRS = {
    "bad_signature": (
        lambda: tampered_csr(["forged.home.arpa"]),
        "bad_csr",
        "signature",
        ["forged.home.arpa"],
    ),
    "not_pem": (lambda: "not a CSR", "bad_csr", "PEM", []),
    "wildcard": (
        lambda: make_csr(["*.home.arpa"])[0],
        "policy_denied",
        "*.home.arpa",
        ["*.home.arpa"],
    ),
    "outside_domains": (
        lambda: make_csr(["svc.example.com"])[0],
        "policy_denied",
        "svc.example.com",
        ["svc.example.com"],
    ),
    "rsa_1024": (
        lambda: rsa_1024_csr(["small.home.arpa"]),
        "policy_denied",
        "1024",
        ["small.home.arpa"],
    ),
    "no_names": (lambda: make_csr([])[0], "bad_csr", "subjectAltName", []),
}


@pytest.mark.parametrize("case", REFUSED_CSRS)
def test_refused_csr_gets_its_code_before_any_challenge(lab, case):
    build, code, named, recorded = REFUSED_CSRS[case]
    for name in ("forged.home.arpa", "small.home.arpa"):
        lab.resolve(name)
    before = lab.request_ids()

    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 1, "csr": build()})
        final = wire.receive()
        assert wire.closed()

    assert_refused(final, code, named)
    row = assert_stored_failure(lab, before, code)
    assert [s["stage"] for s in row["stages"]] == ["received", "failed"]
    assert row["names"] == recorded
    assert_still_issues(lab)


def test_unsupported_protocol_version_is_refused_by_name(lab):
    csr, _ = make_csr(["svc.home.arpa"])
    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 2, "csr": csr})
        final = wire.receive()

    assert_refused(final, "unsupported_protocol", "2")
    assert_still_issues(lab)


def test_validity_over_the_policy_maximum_is_refused(lab):
    csr, _ = make_csr(["svc.home.arpa"])
    before = lab.request_ids()
    with lab.wire() as wire:
        wire.send(
            {"type": "request", "protocol": 1, "csr": csr, "validity_days": 398}
        )
        final = wire.receive()

    assert_refused(final, "policy_denied", "398")
    assert_stored_failure(lab, before, "policy_denied")
    assert_still_issues(lab)


# Refusals after the challenge: port, DNS and addresses.


def test_challenge_port_outside_the_allowed_range_is_refused(lab):
    # The lab allows 1-65000 so that tests need not be root.
    lab.resolve("port.home.arpa")
    before = lab.request_ids()

    final, _, stages = converse(lab, ["port.home.arpa"], port=65001)

    assert_refused(final, "policy_denied", "65001")
    assert stages == []  # refused before resolving anything
    assert_stored_failure(lab, before, "policy_denied")
    assert_still_issues(lab)


def test_name_without_records_fails_dns(lab):
    before = lab.request_ids()

    final, _, stages = converse(lab, ["missing.home.arpa"])

    assert_refused(final, "dns_failed", "missing.home.arpa")
    assert stages == ["resolving"]
    row = assert_stored_failure(lab, before, "dns_failed")
    assert row["names"] == ["missing.home.arpa"]
    assert_still_issues(lab)


def test_resolvers_that_disagree_are_refused(lab):
    first, second = lab.dns
    first.records["split.home.arpa"] = [HOST_ADDRESS]
    second.records["split.home.arpa"] = ["127.0.0.7"]
    before = lab.request_ids()

    final, _, stages = converse(lab, ["split.home.arpa"])

    assert_refused(final, "dns_disagreement", "split.home.arpa")
    assert stages == ["resolving"]
    assert_stored_failure(lab, before, "dns_disagreement")
    assert_still_issues(lab)


def test_address_outside_allowed_networks_is_never_connected_to(lab):
    # TEST-NET-1: not in the lab's 127.0.0.0/8, and unroutable anyway.
    lab.resolve("far.home.arpa", "192.0.2.10")
    before = lab.request_ids()

    final, _, stages = converse(lab, ["far.home.arpa"])

    assert_refused(final, "policy_denied", "192.0.2.10")
    assert "connecting" not in stages
    assert_stored_failure(lab, before, "policy_denied")
    assert_still_issues(lab)


def test_name_resolving_to_the_agents_own_address_is_refused(lab):
    lab.resolve("self.home.arpa", "127.0.0.1")
    before = lab.request_ids()

    final, _, _ = converse(lab, ["self.home.arpa"])

    assert_refused(final, "policy_denied", "127.0.0.1")
    assert_stored_failure(lab, before, "policy_denied")
    assert_still_issues(lab)


# The challenge connection itself.


def closed_port() -> int:
    return free_port(HOST_ADDRESS)


def test_closed_challenge_port_fails_to_connect(lab):
    lab.resolve("closed.home.arpa")
    before = lab.request_ids()

    final, _, stages = converse(lab, ["closed.home.arpa"], port=closed_port())

    assert_refused(final, "connect_failed", HOST_ADDRESS)
    assert stages == ["resolving", "connecting"]
    assert_stored_failure(lab, before, "connect_failed")
    assert_still_issues(lab)


def other_key_answer(challenge, key):
    # The right token bound to another key: what an eavesdropper could send.
    other = generate_key("ec-p256").public_key()
    return lambda line: key_authorization(challenge["token"], other) + b"\n"


WRONG_ANSWERS = {
    "wrong_token": lambda challenge, key: (
        lambda line: key_authorization("A" * 43, key) + b"\n"
    ),
    "other_key": other_key_answer,
    "closes_silently": lambda challenge, key: (lambda line: b""),
    "overlong_line": lambda challenge, key: (lambda line: b"x" * 600 + b"\n"),
    "never_answers": lambda challenge, key: (lambda line: None),
}


@pytest.mark.parametrize("case", WRONG_ANSWERS)
def test_wrong_challenge_answer_fails_the_challenge(lab, case):
    lab.resolve("wrong.home.arpa")
    before = lab.request_ids()

    final, challenge, stages = converse(
        lab, ["wrong.home.arpa"], answer=WRONG_ANSWERS[case]
    )

    assert_refused(final, "challenge_failed", HOST_ADDRESS)
    assert challenge["token"] not in final["message"]
    assert stages == ["resolving", "connecting"]
    assert_stored_failure(lab, before, "challenge_failed")
    assert_still_issues(lab)


def test_responder_of_another_request_fails_the_challenge(lab):
    # Answering only our own id is the host's rule; the agent must check too.
    lab.resolve("other.home.arpa")

    def answer_for_another_id(challenge, key):
        other = dict(challenge, request_id="0" * 16)
        return correct_answer(other, key)

    final, _, _ = converse(lab, ["other.home.arpa"], answer=answer_for_another_id)

    assert_refused(final, "challenge_failed")
    assert_still_issues(lab)


def test_each_request_gets_a_fresh_token_and_an_old_answer_fails(lab):
    _, first = issue_over_wire(lab, "once.home.arpa")
    key = generate_key("ec-p256")

    def replay(challenge, _):
        return lambda line: key_authorization(first["token"], key.public_key()) + b"\n"

    final, second, _ = converse(lab, ["once.home.arpa"], answer=replay, key=key)

    assert second["token"] != first["token"]
    assert second["request_id"] != first["request_id"]
    assert_refused(final, "challenge_failed")


# Malformed frames: refused with an error, and nothing stored.

BAD_FRAMES = {
    "zero_length": (frame(b""), "bad_frame"),
    "over_64_KiB": (frame(b"", length=65537), "bad_frame"),
    "not_json": (frame(b"{not json"), "bad_frame"),
    "not_utf8": (frame(b'{"type": "\xff"}'), "bad_frame"),
    "not_an_object": (frame(b"[1, 2]"), "bad_frame"),
    "no_type": (frame(b'{"protocol": 1}'), "bad_frame"),
    "unknown_type": (frame(b'{"type": "gimme"}'), "bad_request"),
    "csr_not_text": (frame(b'{"type":"request","protocol":1,"csr":5}'), "bad_request"),
}


@pytest.mark.parametrize("case", BAD_FRAMES)
def test_malformed_first_frame_gets_an_error_and_is_not_a_request(lab, case):
    data, code = BAD_FRAMES[case]
    before = lab.request_ids()

    with lab.wire() as wire:
        wire.send_raw(data)
        final = wire.receive()
        assert wire.closed()

    assert_refused(final, code)
    assert lab.new_requests(before) == []
    assert_still_issues(lab)


def test_full_64_KiB_frame_is_read_whole(lab):
    # The largest legal frame: padded JSON the agent must read, then refuse.
    body = json.dumps({"type": "request", "protocol": 1, "csr": "x"}).encode()
    body = body[:-1] + b" " * (65536 - len(body)) + b"}"
    before = lab.request_ids()

    with lab.wire() as wire:
        wire.send_raw(frame(body))
        final = wire.receive()

    assert_refused(final, "bad_csr")
    assert_stored_failure(lab, before, "bad_csr")


BAD_READY = {
    "not_json": (frame(b"nope"), "bad_frame"),
    "port_not_a_number": (frame(b'{"type":"ready","port":"80"}'), "bad_request"),
    "request_again": (
        frame(b'{"type":"request","protocol":1,"csr":""}'),
        "bad_request",
    ),
}


@pytest.mark.parametrize("case", BAD_READY)
def test_malformed_frame_instead_of_ready_fails_the_stored_request(lab, case):
    data, code = BAD_READY[case]
    csr, _ = make_csr(["ready.home.arpa"])
    before = lab.request_ids()

    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 1, "csr": csr})
        assert wire.receive()["type"] == "challenge"
        wire.send_raw(data)
        final = wire.receive()

    assert_refused(final, code)
    row = assert_stored_failure(lab, before, code)
    assert row["names"] == ["ready.home.arpa"]
    assert_still_issues(lab)


def test_client_that_hangs_up_mid_request_leaves_a_failed_request(lab):
    csr, _ = make_csr(["gone.home.arpa"])
    before = lab.request_ids()

    with lab.wire() as wire:
        wire.send({"type": "request", "protocol": 1, "csr": csr})
        assert wire.receive()["type"] == "challenge"

    [row] = wait_for_outcome(lab, before)
    assert (row["outcome"], row["error_code"]) == ("failed", "bad_request")
    assert row["names"] == ["gone.home.arpa"]
    assert_still_issues(lab)


def wait_for_outcome(lab: Lab, before: set[str]) -> list[dict]:
    """New requests, once each has one: the agent notices a hang-up by itself."""
    deadline = time.monotonic() + 30
    while True:
        rows = lab.new_requests(before)
        if all(row["outcome"] for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_store_is_sound_after_every_refusal_in_this_module(lab):
    """Bad input must never corrupt what the store holds (`scb-agent check`)."""
    result = run_scb(lab.agent.env, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.agent.call("requests", pending=True) == []


# What the agent says about it all.


def wait_for_log(agent: Agent, pattern: str) -> list[str]:
    """Lines matching `pattern`, waiting for the agent to write them."""
    deadline = time.monotonic() + 30
    while True:
        lines = [
            line
            for line in agent.log.read_text().splitlines()
            if re.search(pattern, line)
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_log_has_one_line_per_request_and_no_secrets(lab):
    issued, good = issue_over_wire(lab, "logged.home.arpa")
    lab.resolve("logfail.home.arpa")
    _, bad, _ = converse(
        lab, ["logfail.home.arpa"], answer=WRONG_ANSWERS["closes_silently"]
    )

    [ok_line] = wait_for_log(lab.agent, rf"request {good['request_id']} ")
    [bad_line] = wait_for_log(lab.agent, rf"request {bad['request_id']} ")

    ms = r"in \d+(\.\d+)? ms"
    assert re.search(
        rf"peer 127\.0\.0\.1 names logged\.home\.arpa issued {ms}", ok_line
    )
    assert re.search(
        rf"peer 127\.0\.0\.1 names logfail\.home\.arpa failed challenge_failed {ms}",
        bad_line,
    )
    text = lab.agent.log.read_text()
    assert lab.tokens, "the module handed out tokens"
    for token in lab.tokens:
        assert token not in text
    assert "PRIVATE KEY" not in text
    assert "BEGIN CERTIFICATE REQUEST" not in text


# Shutdown, on an agent of its own.


def test_sigterm_finishes_the_request_in_flight_then_exits_zero(tmp_path):
    dns = DnsThread({"late.home.arpa": [HOST_ADDRESS]}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    # An idle connection must not hold the shutdown up for its message timeout.
    agent.configure("timeouts", message=3600.0)
    agent.start()
    try:
        host = Host(tmp_path / "host", agent)
        root_pem = host.config_dir / "root.pem"
        csr, key = make_csr(["late.home.arpa"])
        release = threading.Event()

        def answer_when_released(challenge, public_key):
            honest = correct_answer(challenge, public_key)
            return lambda line: honest(line) if release.wait(60) else None

        idle = Wire(agent.address, root_pem)  # connected, never asks anything
        with idle, Wire(agent.address, root_pem) as wire:
            wire.send({"type": "request", "protocol": 1, "csr": csr})
            challenge = wire.receive()
            respond = answer_when_released(challenge, key.public_key())
            with Responder([HOST_ADDRESS], respond) as responder:
                wire.send({"type": "ready", "port": responder.port})
                assert responder.asked.wait(30), "the agent never probed"
                agent.process.send_signal(signal.SIGTERM)
                assert wait_for_log(agent, r"stopping: finishing \d+ requests")
                release.set()
                final, _ = wire.final()
            assert idle.closed()

        assert final["type"] == "certificate", final
        assert agent.process.wait(60) == 0
        assert wait_for_log(agent, r"names late\.home\.arpa issued")
    finally:
        agent.stop()
        dns.stop()
