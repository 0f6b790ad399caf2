"""JASC/1 self-revocation: revoke, nonce, proof, revoked — both sides, no sockets."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scb_core.errors import ScbError
from scb_core.protocol import (
    CertificateRevoked,
    ClientProtocol,
    ErrorReceived,
    NonceIssued,
    ProofSent,
    RevocationRequested,
    ServerProtocol,
)
from tests.test_protocol import assert_refused, deliver, raw, server_in

NONCE = bytes(range(32))
SIGNATURE = b"\x30\x45" + b"\x01" * 69
REVOKE = {"type": "revoke", "protocol": 1, "serial": "0A1B", "reason": "superseded"}


def nonce_frame() -> bytes:
    server = ServerProtocol()
    server.receive_data(raw(REVOKE))
    return server.send_nonce(NONCE)


def server_awaiting_proof() -> ServerProtocol:
    server = ServerProtocol()
    server.receive_data(raw(REVOKE))
    server.send_nonce(NONCE)
    return server


def client_in(state: str) -> ClientProtocol:
    client = ClientProtocol()
    client.send_revoke("0A1B", "superseded")
    if state in ("send_proof", "await_revoked"):
        client.receive_data(nonce_frame())
    if state == "await_revoked":
        client.send_proof(SIGNATURE)
    assert client.state == state
    return client


def pipe(data: bytes, side, size: int) -> list:
    """The fake pipe, cut into pieces of *size* bytes."""
    events = []
    for start in range(0, len(data), size):
        events += side.receive_data(data[start : start + size])
    return events


def test_revocation_through_a_fake_pipe():
    server, client = ServerProtocol(), ClientProtocol()

    assert deliver(client.send_revoke("0a1b", "keyCompromise"), server) == [
        RevocationRequested("0a1b", "keyCompromise")
    ]
    assert deliver(server.send_nonce(NONCE), client) == [NonceIssued(NONCE)]
    assert deliver(client.send_proof(SIGNATURE), server) == [ProofSent(SIGNATURE)]
    assert server.state == "revoking"
    assert deliver(server.send_revoked("0A1B"), client) == [CertificateRevoked("0A1B")]

    assert server.state == client.state == "closed"


def test_nonce_and_proof_travel_as_unpadded_base64url():
    nonce = b'"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"'

    assert nonce in nonce_frame()
    assert b'"signature":"__8"' in client_in("send_proof").send_proof(b"\xff\xff")


def test_proof_as_first_message_is_bad_request():
    assert_refused(
        ServerProtocol(), raw({"type": "proof", "signature": "AA"}), "bad_request"
    )


def test_revoke_after_a_request_is_bad_request():
    assert_refused(server_in("await_ready"), raw(REVOKE), "bad_request")


def test_second_proof_is_bad_request():
    server = server_awaiting_proof()
    server.receive_data(raw({"type": "proof", "signature": "AAAA"}))

    assert_refused(server, raw({"type": "proof", "signature": "AAAA"}), "bad_request")


def test_revoke_in_another_protocol_version_is_unsupported_protocol():
    assert_refused(
        ServerProtocol(), raw({**REVOKE, "protocol": 2}), "unsupported_protocol"
    )


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"serial": "0x1B"}, "'serial' must be 1 to 40 hex digits"),
        ({"serial": "A" * 41}, "'serial' must be 1 to 40 hex digits"),
        ({"reason": "key compromise"}, "'reason' must be an RFC 5280 reason name"),
        ({"reason": 1}, "'reason' must be an RFC 5280 reason name"),
    ],
)
def test_malformed_revoke_is_bad_request(fields, words):
    error = assert_refused(ServerProtocol(), raw({**REVOKE, **fields}), "bad_request")
    assert words in error.message


@pytest.mark.parametrize("signature", ["", "A", "AAAAA", "AA==", "A+/A", "A" * 1367])
def test_malformed_proof_is_bad_request(signature):
    proof = raw({"type": "proof", "signature": signature})

    error = assert_refused(server_awaiting_proof(), proof, "bad_request")
    assert "'signature' must be a base64url signature" in error.message


@pytest.mark.parametrize("nonce", ["A" * 42, "A" * 44, "A" * 42 + "=", 7])
def test_nonce_that_is_not_32_bytes_is_bad_request(nonce):
    error = assert_refused(
        client_in("await_nonce"), raw({"type": "nonce", "nonce": nonce}), "bad_request"
    )
    assert "'nonce' must be 43 base64url characters" in error.message


def test_server_cannot_send_a_short_nonce():
    server = ServerProtocol()
    server.receive_data(raw(REVOKE))

    with pytest.raises(ValueError):
        server.send_nonce(b"too short")


def test_server_cannot_answer_revoked_before_the_proof():
    server = ServerProtocol()
    server.receive_data(raw(REVOKE))

    with pytest.raises(RuntimeError):
        server.send_revoked("0A1B")


def test_client_refuses_revoked_before_it_has_proved_anything():
    revoked = raw({"type": "revoked", "serial": "0A1B"})

    assert_refused(client_in("await_nonce"), revoked, "bad_request")


def test_client_cannot_prove_before_the_nonce():
    with pytest.raises(RuntimeError):
        client_in("await_nonce").send_proof(SIGNATURE)


@pytest.mark.parametrize("state", ["await_nonce", "send_proof", "await_revoked"])
def test_denial_may_arrive_in_any_revocation_state(state):
    error = ScbError("denied", "the proof does not match certificate 0A1B's key")
    server = ServerProtocol()

    events = client_in(state).receive_data(server.send_error(error))

    assert events == [ErrorReceived("denied", error.message, None)]


@settings(max_examples=60)
@given(
    serial=st.from_regex(r"[0-9a-fA-F]{1,40}", fullmatch=True),
    reason=st.from_regex(r"[A-Za-z]{1,32}", fullmatch=True),
    nonce=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=1, max_size=1024),
    size=st.integers(1, 64),
)
def test_valid_revocation_round_trips_between_the_two_sides(
    serial, reason, nonce, signature, size
):
    server, client = ServerProtocol(), ClientProtocol()

    data = client.send_revoke(serial, reason)
    assert pipe(data, server, size) == [RevocationRequested(serial, reason)]
    assert pipe(server.send_nonce(nonce), client, size) == [NonceIssued(nonce)]
    assert pipe(client.send_proof(signature), server, size) == [ProofSent(signature)]
    data = server.send_revoked(serial)
    assert pipe(data, client, size) == [CertificateRevoked(serial)]
