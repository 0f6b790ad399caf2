"""Hostile clients and challenge peers against a real agent process.

Every case gets the exact JASC/1 error DESIGN promises (or, where TLS never
completed, a close without a single JASC/1 byte). After every case the agent
must still issue a certificate to a good client, its memory must stay
bounded, and its log must hold no token and no private key.
"""

import json
import select
import socket
import ssl
import threading
import time
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from scb_core.keys import generate_key
from tests import hostile
from tests.helpers import make_csr
from tests.hostile import Peer, Wire, answering, frame, key_authorization, message
from tests.lab import Agent, DnsThread, run_scb

PEER = "127.0.0.2"  # the host's address: not the agent's own, 127.0.0.1
MIB = 1024

SHORT_TIMEOUTS = {"handshake": 2, "message": 2, "challenge": 2, "request": 30}
# The abuse itself must not trip the rate limits and bans: those have tests.
class Lab:
    def __init__(self, agent: Agent, dns: DnsThread):
        self.agent = agent
        self.dns = dns
        self.root_pem = agent.state_dir / "ca" / "root.pem"
        self.tokens: set[str] = set()
        self.serial = 0

    @property
    def port(self) -> int:
        return self.agent.port

    @property
    def pid(self) -> int:
        return self.agent.process.pid

    def name(self, label: str = "good") -> str:
        """A fresh name that resolves to the peer's address."""
        self.serial += 1
        name = f"{label}-{self.serial}.home.arpa"
        self.dns.records[name] = [PEER]
        return name

    def wire(self) -> Wire:
        return Wire(self.port, self.root_pem)

    def issue(self) -> dict:
        last, tokens = hostile.issue(self.port, self.root_pem, self.name())
        self.tokens.update(tokens)
        return last

    def challenged(self, wire: Wire, names: list[str] | None = None):
        """Send a good request on `wire`; return its challenge and key."""
        csr, key = make_csr(names or [self.name()])
        wire.send(message(type="request", protocol=1, csr=csr))
        challenge = wire.receive()
        assert challenge["type"] == "challenge", challenge
        self.tokens.add(challenge["token"])
        return challenge, key


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("abuse")
    dns = DnsThread({}).start()
    agent = Agent(root / "agent", [dns.address])
    agent.configure("timeouts", **SHORT_TIMEOUTS)
    agent.start()
    lab = Lab(agent, dns)
    try:
        assert lab.issue()["type"] == "certificate"
        lab.baseline = hostile.memory_kib(lab.pid)
        yield lab
    finally:
        agent.stop()
        dns.stop()


@pytest.fixture(autouse=True)
def still_serving(lab):
    """After each case: alive, serving, bounded, and keeping its secrets."""
    yield
    assert lab.agent.process.poll() is None, lab.agent.log.read_text()[-2000:]
    assert lab.issue()["type"] == "certificate"

    memory = hostile.memory_kib(lab.pid)
    assert memory["VmRSS"] < lab.baseline["VmRSS"] + 64 * MIB, memory
    assert memory["VmHWM"] < lab.baseline["VmHWM"] + 128 * MIB, memory
    assert_no_secret_in(lab)


def assert_no_secret_in(lab: Lab) -> None:
    log = lab.agent.log.read_text()
    assert "PRIVATE KEY" not in log
    ca_dir = lab.agent.state_dir / "ca"
    for key_file in ("issuer.key", "root.key", "server.key"):
        body = ca_dir.joinpath(key_file).read_text().splitlines()[1:-1]
        assert not any(line in log for line in body), key_file
    leaked = [token for token in lab.tokens if token in log]
    assert not leaked, f"{len(leaked)} challenge tokens in the agent log"


def assert_error(received: dict | None, code: str, *words: str) -> None:
    assert received is not None, "the agent closed without an error"
    assert received["type"] == "error", received
    assert received["code"] == code, received
    for word in words:
        assert word in received["message"], received


# Before TLS completes: the agent closes without a word of JASC/1. -------------


def client_hello() -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def answer_to_plain_bytes(lab: Lab, data: bytes) -> bytes:
    """Everything the agent sends back to `data` on a bare TCP connection."""
    with socket.create_connection(("127.0.0.1", lab.port), timeout=30) as sock:
        if data:
            sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


def assert_no_jasc(received: bytes) -> None:
    """Nothing, or TLS records (an alert, a handshake reply): never a frame."""
    assert not received or received[0] in (0x15, 0x16), received[:40]
    assert b'"type"' not in received


PLAIN_BYTES = {
    "half_open_tcp": b"",
    "partial_client_hello": client_hello()[:40],
    "client_hello_then_silence": client_hello(),
    "http_get": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "jasc_frame_without_tls": message(type="root"),
    "binary_noise": bytes(range(256)) * 64,
    "tls_record_header_claiming_16k": b"\x16\x03\x01\x40\x00",
    "sslv2_hello": b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10",
}


@pytest.mark.parametrize("data", PLAIN_BYTES.values(), ids=PLAIN_BYTES.keys())
def test_bytes_that_are_not_tls_are_closed_without_a_word(lab, data):
    assert_no_jasc(answer_to_plain_bytes(lab, data))


def test_a_tls_1_2_client_is_refused_during_the_handshake(lab):
    context = ssl.create_default_context(cafile=str(lab.root_pem))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", lab.port), timeout=30) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            context.wrap_socket(raw, server_hostname="127.0.0.1")


# After TLS: silence and slowness run out of time. ---------------------------


def test_tls_then_silence_gets_a_timeout(lab):
    with lab.wire() as wire:
        assert_error(wire.receive(), "timeout", "within 2 s")


def test_half_a_header_then_silence_gets_a_timeout(lab):
    with lab.wire() as wire:
        wire.send(b"\x00\x00")
        assert_error(wire.receive(), "timeout", "within 2 s")


def test_a_frame_shorter_than_its_header_says_gets_a_timeout(lab):
    with lab.wire() as wire:
        wire.send(frame(b'{"type": "root"}', length=65536))
        assert_error(wire.receive(), "timeout", "within 2 s")


def test_a_message_dripped_slower_than_the_message_timeout_is_cut_off(lab):
    """Slowloris: every byte comes in time, the whole message does not."""
    data = message(type="root")  # 19 bytes at 0.3 s: well over the 2 s timeout
    with lab.wire() as wire:
        # One thread only: an SSL socket must not read and write at once. The
        # drip stops as soon as the agent has something to say.
        for byte in data:
            wire.send(bytes([byte]))
            readable, _, _ = select.select([wire.sock], [], [], 0.3)
            if readable:
                break
        assert_error(wire.receive(), "timeout", "within 2 s")


def test_a_request_split_byte_by_byte_is_served(lab):
    csr, key = make_csr([lab.name()])
    with lab.wire() as wire:
        wire.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in message(type="request", protocol=1, csr=csr):
            wire.send(bytes([byte]))
        challenge = wire.receive()
        lab.tokens.add(challenge["token"])
        answer = key_authorization(challenge["token"], key.public_key())
        with Peer(PEER, answering(answer)) as peer:
            for byte in message(type="ready", port=peer.port):
                wire.send(bytes([byte]))
            assert wire.last_word()["type"] == "certificate"


def test_a_second_message_pipelined_behind_the_first_is_out_of_order(lab):
    with lab.wire() as wire:
        wire.send(message(type="root") + message(type="root"))
        assert_error(
            wire.receive(),
            "bad_request",
            "a 'root' message is out of order in state 'send_root'",
        )


# Frames: lengths, encodings, JSON. -----------------------------------------

DEEP = b'{"type": "root", "x": ' + b"[" * 32000 + b"]" * 32000 + b"}"
DEEPER = b'{"type": "root", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
DEEP_OBJECTS = b'{"type": "root", "x": ' + b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}"

BAD_FRAMES = {
    "length_zero": (b"\x00\x00\x00\x00", "bad_frame", "frame length 0 is outside"),
    "length_ffffffff": (
        b"\xff\xff\xff\xff",
        "bad_frame",
        "frame length 4294967295 is outside 1 to 65536",
    ),
    "length_80000000_negative_if_signed": (
        b"\x80\x00\x00\x00" + b"x" * 100,
        "bad_frame",
        "frame length 2147483648 is outside",
    ),
    "length_65537": (frame(b"{}", 65537), "bad_frame", "frame length 65537"),
    "nesting_100k": (frame(DEEPER), "bad_frame", f"frame length {len(DEEPER)}"),
    "nesting_32k_arrays": (frame(DEEP), "bad_frame", "the frame is not JSON"),
    "nesting_10k_objects": (frame(DEEP_OBJECTS), "bad_frame", "is not JSON"),
    "not_utf8": (frame(b'{"type": "\xff"}'), "bad_frame", "byte 10 is 0xff"),
    "not_json": (frame(b"{type: root}"), "bad_frame", "the frame is not JSON"),
    "json_nan": (frame(b'{"type": "root", "x": NaN}'), "bad_frame", "NaN"),
    "json_array": (frame(b'["root"]'), "bad_frame", "holds an array"),
    "json_string": (frame(b'"root"'), "bad_frame", "not a JSON object"),
    "no_type": (frame(b'{"kind": "root"}'), "bad_frame", "has no 'type' field"),
    "type_number": (frame(b'{"type": 7}'), "bad_frame", "must be a string, not 7"),
    "type_unknown": (
        frame(b'{"type": "hello"}'),
        "bad_request",
        "no client message has type 'hello'",
    ),
    "type_empty": (frame(b'{"type": ""}'), "bad_request", "has type ''"),
    "request_lone_surrogate": (
        frame(b'{"type": "request", "protocol": 1, "csr": "\\ud800"}'),
        "bad_request",
        "field 'csr' must be text",
    ),
    "duplicate_type_key_last_wins": (
        frame(b'{"type": "root", "type": "request"}'),
        "bad_request",
        "lacks the field 'protocol'",
    ),
}


@pytest.mark.parametrize(
    "data, code, words", BAD_FRAMES.values(), ids=BAD_FRAMES.keys()
)
def test_a_bad_frame_gets_its_exact_error(lab, data, code, words):
    with lab.wire() as wire:
        wire.send(data)
        assert_error(wire.receive(), code, words)
        assert wire.receive() is None


def test_the_largest_frame_with_unknown_fields_is_served(lab):
    head = b'{"type": "root", "padding": "'
    body = head + b"a" * (65536 - len(head) - 2) + b'"}'
    assert len(body) == 65536
    with lab.wire() as wire:
        wire.send(frame(body))
        assert wire.receive()["type"] == "root"


def test_four_thousand_unknown_fields_are_ignored(lab):
    fields = {f"k{i}": i for i in range(4000)}
    with lab.wire() as wire:
        wire.send(message(type="root", **fields))
        assert wire.receive()["type"] == "root"


# Messages out of order. -------------------------------------------------------

SERVER_TYPES = ["challenge", "status", "certificate", "error", "nonce", "revoked"]


@pytest.mark.parametrize("kind", ["ready", "proof"])
def test_a_client_move_before_the_first_message_is_out_of_order(lab, kind):
    with lab.wire() as wire:
        wire.send(message(type=kind, port=443, signature="AAAA"))
        assert_error(
            wire.receive(),
            "bad_request",
            f"a '{kind}' message is out of order in state 'await_first'",
        )


@pytest.mark.parametrize("kind", SERVER_TYPES)
def test_a_server_message_from_the_client_is_refused(lab, kind):
    with lab.wire() as wire:
        wire.send(message(type=kind))
        assert_error(
            wire.receive(), "bad_request", f"no client message has type '{kind}'"
        )


@pytest.mark.parametrize("kind", ["request", "root", "revoke", "proof"])
def test_anything_but_ready_after_the_challenge_is_out_of_order(lab, kind):
    with lab.wire() as wire:
        lab.challenged(wire)
        wire.send(message(type=kind, protocol=1, csr="x"))
        assert_error(
            wire.receive(),
            "bad_request",
            f"a '{kind}' message is out of order in state 'await_ready'",
        )


def test_a_duplicate_ready_while_the_server_works_is_out_of_order(lab):
    release = threading.Event()

    def hold_then_answer(conn, line):
        release.wait(30)
        conn.sendall(answer + b"\n")

    with lab.wire() as wire:
        challenge, key = lab.challenged(wire)
        answer = key_authorization(challenge["token"], key.public_key())
        with Peer(PEER, hold_then_answer) as peer:
            wire.send(message(type="ready", port=peer.port))
            assert wire.receive() == {"type": "status", "stage": "resolving"}
            assert wire.receive() == {"type": "status", "stage": "connecting"}
            wire.send(message(type="ready", port=peer.port))
            assert_error(
                wire.last_word(),
                "bad_request",
                "a 'ready' message is out of order in state 'working'",
            )
            release.set()


def test_a_client_hanging_up_mid_challenge_is_recorded_as_failed(lab):
    release = threading.Event()
    with lab.wire() as wire:
        challenge, _ = lab.challenged(wire)
        with Peer(PEER, lambda conn, line: release.wait(30)) as peer:
            wire.send(message(type="ready", port=peer.port))
            assert wire.receive()["stage"] == "resolving"
            assert wire.receive()["stage"] == "connecting"
            wire.sock.close()
            request_id = challenge["request_id"]
            row = wait_for_outcome(lab, request_id)
            release.set()
    assert row["outcome"] == "failed"
    assert "closed the connection" in row["error_message"]


def wait_for_outcome(lab: Lab, request_id: str) -> dict:
    """The request's row once it has an outcome, from the admin socket."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for row in lab.agent.call("requests", limit=50):
            if row["id"] == request_id and row["outcome"]:
                return row
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} never finished")


# Field values. ---------------------------------------------------------------

PORTS = {
    "zero": (0, "not 0"),
    "65536": (65536, "not 65536"),
    "string_80": ("80", "not '80'"),
    "negative": (-1, "not -1"),
    "float": (443.0, "not 443.0"),
    "true": (True, "not true"),
    "null": (None, "not null"),
    "array": ([443], "not an array"),
}


@pytest.mark.parametrize("port, shown", PORTS.values(), ids=PORTS.keys())
def test_a_ready_port_that_is_no_port_is_refused(lab, port, shown):
    with lab.wire() as wire:
        lab.challenged(wire)
        wire.send(message(type="ready", port=port))
        assert_error(
            wire.receive(),
            "bad_request",
            "field 'port' must be an integer from 1 to 65535",
            shown,
        )


def test_a_ready_port_outside_the_challenge_ports_is_denied(lab):
    with lab.wire() as wire:
        lab.challenged(wire)
        wire.send(message(type="ready", port=65001))
        assert_error(
            wire.receive(),
            "policy_denied",
            "challenge port 65001 is outside the allowed range 1-65000",
        )


def test_a_ready_without_port_names_the_field(lab):
    with lab.wire() as wire:
        lab.challenged(wire)
        wire.send(message(type="ready"))
        assert_error(wire.receive(), "bad_request", "lacks the field 'port'")


REQUEST_FIELDS = {
    "protocol_2": ({"protocol": 2}, "unsupported_protocol", "version 2 is not"),
    "protocol_string": ({"protocol": "1"}, "bad_request", "'protocol' must be"),
    "protocol_missing": ({"protocol": None}, "bad_request", "field 'protocol'"),
    "csr_number": ({"csr": 5}, "bad_request", "field 'csr' must be text, not 5"),
    "csr_missing": ({"csr": None}, "bad_request", "lacks the field 'csr'"),
    "validity_zero": (
        {"validity_days": 0},
        "bad_request",
        "'validity_days' must be an integer from 1 to 3650, not 0",
    ),
    "validity_string": ({"validity_days": "90"}, "bad_request", "not '90'"),
    "validity_over_policy": (
        {"validity_days": 398},
        "policy_denied",
        "validity of 398 days is outside 1 to 397",
    ),
}


@pytest.mark.parametrize(
    "change, code, words", REQUEST_FIELDS.values(), ids=REQUEST_FIELDS.keys()
)
def test_a_request_field_of_the_wrong_kind_is_named(lab, change, code, words):
    csr, _ = make_csr([lab.name()])
    fields = {"type": "request", "protocol": 1, "csr": csr}
    for key, value in change.items():
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value
    with lab.wire() as wire:
        wire.send(frame(json.dumps(fields).encode()))
        assert_error(wire.receive(), code, words)


# CSRs. ---------------------------------------------------------------------


def csr_pem(builder, key=None) -> str:
    key = key or generate_key("ec-p256")
    return (
        builder.sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def with_names(
    names: list[str], subject: x509.Name | None = None
) -> x509.CertificateSigningRequestBuilder:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject or x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        )
    )


def der_length(size: int) -> bytes:
    if size < 128:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def signed_by_another_key() -> str:
    """A CSR for key A whose signature was made by key B."""
    key, other = generate_key("ec-p256"), generate_key("ec-p256")
    csr = with_names(["other.home.arpa"]).sign(key, hashes.SHA256())
    tbs = csr.tbs_certrequest_bytes
    signature = other.sign(tbs, ec.ECDSA(hashes.SHA256()))
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")
    bits = b"\x03" + der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    der = b"\x30" + der_length(len(body)) + body
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()


def unicode_dns_name() -> str:
    """A dNSName holding raw UTF-8, which no IA5String may carry."""
    name = "ünïcode.home.arpa".encode()
    general = b"\x82" + der_length(len(name)) + name
    san = b"\x30" + der_length(len(general)) + general
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, san),
            critical=False,
        )
    )
    return csr_pem(builder)


def with_subject(*attributes) -> str:
    with warnings.catch_warnings():
        # Unvalidated, so that a bad country code gets as far as the agent.
        warnings.simplefilter("ignore", UserWarning)
        subject = x509.Name(
            [x509.NameAttribute(o, v, _validate=False) for o, v in attributes]
        )
    builder = with_names(["subject.home.arpa"], subject)
    return csr_pem(builder)


def truncated() -> str:
    good, _ = make_csr(["cut.home.arpa"])
    lines = good.splitlines()
    return "\n".join(lines[:3] + lines[-1:]) + "\n"


def small_rsa() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return (
        with_names(["rsa.home.arpa"])
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def many_names(count: int) -> str:
    return csr_pem(with_names([f"n{i}.home.arpa" for i in range(count)]))


CSRS = {
    "garbage": (lambda: "garbage", "bad_csr", "not a PEM PKCS#10 request"),
    "empty": (lambda: "", "bad_request", "field 'csr' must be text, not ''"),
    "blank": (lambda: "\n", "bad_csr", "not a PEM PKCS#10 request"),
    "truncated": (truncated, "bad_csr", "not a PEM PKCS#10 request"),
    "pem_of_a_certificate": (
        lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "bad_csr",
        "not a PEM PKCS#10",
    ),
    "signed_by_another_key": (
        signed_by_another_key,
        "bad_csr",
        "the CSR signature does not verify",
    ),
    "rsa_1024": (small_rsa, "policy_denied", "RSA key of 1024 bits is not allowed"),
    "no_names": (
        lambda: csr_pem(
            x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        ),
        "bad_csr",
        "names no DNS name",
    ),
    "2500_names": (
        lambda: many_names(2500),
        "policy_denied",
        "2500 names requested; at most 100",
    ),
    "invalid_punycode": (
        lambda: csr_pem(with_names(["xn--zz.home.arpa"])),
        "policy_denied",
        "'xn--zz.home.arpa' is not a valid DNS name",
    ),
    "underscore": (
        lambda: csr_pem(with_names(["a_b.home.arpa"])),
        "policy_denied",
        "is not a valid DNS name",
    ),
    "nul_in_name": (
        lambda: csr_pem(with_names(["a\x00b.home.arpa"])),
        "policy_denied",
        "'a\\x00b.home.arpa' is not a valid DNS name",
    ),
    "label_64_long": (
        lambda: csr_pem(with_names(["a" * 64 + ".home.arpa"])),
        "policy_denied",
        "is not a valid DNS name",
    ),
    "raw_utf8_in_dns_name": (
        unicode_dns_name,
        "bad_csr",
        "dNSName 'ünïcode.home.arpa' is not ASCII",
    ),
    "wildcard": (
        lambda: csr_pem(with_names(["*.home.arpa"])),
        "policy_denied",
        "wildcard '*.home.arpa' refused",
    ),
    "ip_literal": (
        lambda: csr_pem(with_names(["127.0.0.2"])),
        "policy_denied",
        "IP literal '127.0.0.2'",
    ),
    "outside_allowed_domains": (
        lambda: csr_pem(with_names(["evil.example"])),
        "policy_denied",
        "evil.example is outside the allowed domains: home.arpa",
    ),
    "control_character_in_o": (
        lambda: with_subject((NameOID.ORGANIZATION_NAME, "Lab\x07Bell")),
        "bad_csr",
        "subject O='Lab\\x07Bell' has control characters",
    ),
    "newline_in_ou": (
        lambda: with_subject((NameOID.ORGANIZATIONAL_UNIT_NAME, "a\nb")),
        "bad_csr",
        "subject OU='a\\nb' has control characters",
    ),
    "escape_in_l": (
        lambda: with_subject((NameOID.LOCALITY_NAME, "\x1b[31mred")),
        "bad_csr",
        "subject L='\\x1b[31mred' has control characters",
    ),
    "three_letter_country": (
        lambda: with_subject((NameOID.COUNTRY_NAME, "DEU")),
        "policy_denied",
        "subject C='DEU' must be two letters",
    ),
    "email_in_subject": (
        lambda: with_subject((NameOID.EMAIL_ADDRESS, "a@b.c")),
        "policy_denied",
        "subject field 1.2.840.113549.1.9.1 is not allowed",
    ),
    "common_name_not_first_name": (
        lambda: with_subject((NameOID.COMMON_NAME, "other.home.arpa")),
        "policy_denied",
        "must equal the first name, subject.home.arpa",
    ),
}


@pytest.mark.parametrize("make, code, words", CSRS.values(), ids=CSRS.keys())
def test_a_bad_csr_gets_its_exact_error_before_any_challenge(lab, make, code, words):
    with lab.wire() as wire:
        wire.send(message(type="request", protocol=1, csr=make()))
        assert_error(wire.receive(), code, words)


def test_a_csr_with_10000_names_does_not_fit_a_frame(lab):
    body = json.dumps({"type": "request", "protocol": 1, "csr": many_names(10000)})
    with lab.wire() as wire:
        wire.send(frame(body.encode()))
        assert_error(
            wire.receive(), "bad_frame", f"frame length {len(body)} is outside"
        )


# Challenge peers. -------------------------------------------------------------


def endless(conn, line):
    chunk = b"A" * 65536
    while True:
        conn.sendall(chunk)


def silent(conn, line):
    conn.recv(1)  # until the certifier gives up and closes


def closes_at_once(conn, line):
    conn.close()


def run_challenge(lab: Lab, behave, read_line: bool = True):
    with lab.wire() as wire:
        challenge, _ = lab.challenged(wire)
        with Peer(PEER, behave, read_line) as peer:
            wire.send(message(type="ready", port=peer.port))
            return wire.last_word(), peer, challenge


def test_a_peer_sending_endless_data_fails_the_challenge(lab):
    last, peer, _ = run_challenge(lab, endless)
    assert_error(last, "challenge_failed", f"{PEER}:{peer.port} sent a line over 512")


def test_a_peer_sending_nothing_fails_the_challenge(lab):
    last, peer, _ = run_challenge(lab, silent)
    assert_error(
        last, "challenge_failed", f"{PEER}:{peer.port} did not answer within 2 s"
    )


def test_a_peer_closing_at_once_fails_the_challenge(lab):
    last, peer, _ = run_challenge(lab, closes_at_once, read_line=False)
    assert_error(last, "challenge_failed", f"{PEER}:{peer.port}")


def test_nobody_listening_fails_to_connect(lab):
    with lab.wire() as wire:
        lab.challenged(wire)
        with Peer(PEER, silent) as peer:
            port = peer.port
        wire.send(message(type="ready", port=port))
        assert_error(wire.last_word(), "connect_failed", f"{PEER}:{port}")


def test_a_peer_answering_for_another_request_fails_the_challenge(lab):
    with lab.wire() as first, lab.wire() as second:
        other, other_key = lab.challenged(first)
        challenge, _ = lab.challenged(second)
        answer = key_authorization(other["token"], other_key.public_key())
        with Peer(PEER, answering(answer)) as peer:
            second.send(message(type="ready", port=peer.port))
            last = second.last_word()
    assert_error(last, "challenge_failed", "wrong key authorization")
    assert peer.lines == [f"JASC/1 {challenge['request_id']}\n".encode()]


def test_a_peer_answering_with_another_key_fails_the_challenge(lab):
    stranger = generate_key("ec-p256")

    with lab.wire() as wire:
        challenge, _ = lab.challenged(wire)
        answer = key_authorization(challenge["token"], stranger.public_key())
        with Peer(PEER, answering(answer)) as peer:
            wire.send(message(type="ready", port=peer.port))
            assert_error(wire.last_word(), "challenge_failed", "wrong key")


def test_a_token_is_single_use(lab):
    with lab.wire() as wire:
        challenge, key = lab.challenged(wire)
        answer = key_authorization(challenge["token"], key.public_key())
        with Peer(PEER, answering(answer)) as peer:
            wire.send(message(type="ready", port=peer.port))
            assert wire.last_word()["type"] == "certificate"
            reused = peer.lines
    # A new request gets a new token: the old answer is worth nothing.
    with lab.wire() as wire:
        again, _ = lab.challenged(wire)
        assert again["token"] != challenge["token"]
        with Peer(PEER, answering(answer)) as peer:
            wire.send(message(type="ready", port=peer.port))
            assert_error(wire.last_word(), "challenge_failed", "wrong key")
    assert reused


# Revocation by a host that cannot prove the key. -----------------------------


def issued_serial(lab: Lab) -> str:
    last = lab.issue()
    assert last["type"] == "certificate", last
    return last["serial"]


REVOKES = {
    "unknown_serial": (
        {"serial": "BEEF", "reason": "superseded"},
        "bad_request",
        "no certificate with serial BEEF",
    ),
    "serial_not_hex": (
        {"serial": "xyz", "reason": "superseded"},
        "bad_request",
        "field 'serial' must be 1 to 40 hex digits, not 'xyz'",
    ),
    "serial_41_digits": (
        {"serial": "1" * 41, "reason": "superseded"},
        "bad_request",
        "field 'serial' must be 1 to 40 hex digits",
    ),
    "reason_unknown": (
        {"serial": "BEEF", "reason": "because"},
        "bad_request",
        "because",
    ),
    "reason_number": (
        {"serial": "BEEF", "reason": 4},
        "bad_request",
        "field 'reason' must be an RFC 5280 reason name, not 4",
    ),
    "protocol_2": (
        {"serial": "BEEF", "reason": "superseded", "protocol": 2},
        "unsupported_protocol",
        "version 2",
    ),
}


@pytest.mark.parametrize("fields, code, words", REVOKES.values(), ids=REVOKES.keys())
def test_a_bad_revoke_gets_its_exact_error(lab, fields, code, words):
    with lab.wire() as wire:
        wire.send(message(**{"type": "revoke", "protocol": 1, **fields}))
        assert_error(wire.receive(), code, words)


def test_a_revocation_reason_only_the_operator_may_give_is_refused(lab):
    serial = issued_serial(lab)
    with lab.wire() as wire:
        wire.send(
            message(type="revoke", protocol=1, serial=serial, reason="cACompromise")
        )
        assert_error(wire.receive(), "bad_request", "for the CA's operator to give")


def revoke_until_nonce(lab: Lab, wire: Wire) -> str:
    serial = issued_serial(lab)
    wire.send(message(type="revoke", protocol=1, serial=serial, reason="superseded"))
    nonce = wire.receive()
    assert nonce["type"] == "nonce", nonce
    return serial


def test_a_proof_made_with_another_key_is_denied_and_nothing_revoked(lab):
    with lab.wire() as wire:
        serial = revoke_until_nonce(lab, wire)
        wire.send(message(type="proof", signature="c2lnbmVkIGJ5IG5vYm9keQ"))
        assert_error(wire.receive(), "denied", f"key of certificate {serial}")
    row = lab.agent.call("certificate", serial=serial)
    assert row["status"] == "valid"


@pytest.mark.parametrize(
    "data, code, words",
    [
        (message(type="proof", signature="not base64!"), "bad_request", "signature"),
        (message(type="ready", port=443), "bad_request", "in state 'await_proof'"),
        (b"", "timeout", "within 2 s"),
    ],
    ids=["proof_not_base64", "ready_instead_of_proof", "silence"],
)
def test_anything_but_a_proof_after_the_nonce_is_refused(lab, data, code, words):
    with lab.wire() as wire:
        revoke_until_nonce(lab, wire)
        wire.send(data)
        assert_error(wire.receive(), code, words)


# The admin socket: local and 0600, but the console must not crash it. ---------


def admin_reply(lab: Lab, line: bytes) -> dict | None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(lab.agent.admin_socket))
        try:
            sock.sendall(line)
        except OSError:
            return None  # the agent hung up before we finished: refused
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    return json.loads(data)


ADMIN = {
    "not_json": (b"not json\n", "an admin request is one line of JSON"),
    "not_utf8": (b"\xff\xfe\n", "an admin request is one line of JSON"),
    "array": (b"[1]\n", "an admin request is a JSON object"),
    "nested_100k": (
        b"[" * 100000 + b"]" * 100000 + b"\n",
        "an admin request is one line of JSON",
    ),
    "unknown_command": (b'{"command": "nope"}\n', "unknown admin command 'nope'"),
    "args_not_object": (
        b'{"command": "status", "args": [1]}\n',
        "admin args must be a JSON object",
    ),
    "unknown_argument": (
        b'{"command": "certificates", "args": {"bogus": 1}}\n',
        "unexpected keyword argument 'bogus'",
    ),
    "limit_not_a_number": (
        b'{"command": "audit", "args": {"limit": "1; DROP TABLE audit"}}\n',
        "must be a positive integer",
    ),
    "serial_not_hex": (
        b'{"command": "certificate", "args": {"serial": "zz"}}\n',
        "serial 'zz' is not hexadecimal",
    ),
}


@pytest.mark.parametrize("line, words", ADMIN.values(), ids=ADMIN.keys())
def test_a_bad_admin_line_gets_an_error_reply(lab, line, words):
    reply = admin_reply(lab, line)

    assert reply is not None and reply["ok"] is False, reply
    assert reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]


def test_an_admin_line_over_a_mebibyte_is_dropped(lab):
    assert admin_reply(lab, b"x" * (2 << 20)) is None
    assert admin_reply(lab, b'{"command": "status"}\n')["ok"] is True


# The store after all of the above. -------------------------------------------


def test_the_store_stays_sound_while_the_agent_runs(lab):
    result = run_scb(lab.agent.env, "check")

    assert result.returncode == 0, result.stderr
    assert "agent running" in result.stdout
