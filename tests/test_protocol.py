"""JASC/1 framing and both state machines, driven without sockets."""

import json

import pytest

from scb_core.errors import ScbError
from scb_core.protocol import (
    MAX_FRAME,
    CertificateIssued,
    CertificateRequested,
    ChallengeIssued,
    ClientProtocol,
    ErrorReceived,
    FrameDecoder,
    Ready,
    RootRequested,
    RootSent,
    ServerProtocol,
    StageChanged,
    encode_frame,
)

TOKEN = "A" * 42 + "_"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def raw(message: object) -> bytes:
    return frame(json.dumps(message).encode())


def deliver(data: bytes, side) -> list:
    """The fake pipe: hand *data* over one byte at a time, as TCP may."""
    events = []
    for i in range(len(data)):
        events += side.receive_data(data[i : i + 1])
    return events


def assert_refused(side, data: bytes, code: str) -> ScbError:
    with pytest.raises(ScbError) as caught:
        side.receive_data(data)
    assert caught.value.code == code
    assert side.state == "closed"
    return caught.value


def server_in(state: str) -> ServerProtocol:
    server = ServerProtocol()
    if state in ("send_challenge", "await_ready", "working"):
        server.receive_data(raw({"type": "request", "protocol": 1, "csr": CSR}))
    if state in ("await_ready", "working"):
        server.send_challenge("r1", TOKEN, 60)
    if state == "working":
        server.receive_data(raw({"type": "ready", "port": 443}))
    assert server.state == state
    return server


def client_in(state: str) -> ClientProtocol:
    client = ClientProtocol()
    if state == "await_root":
        client.send_root_request()
    if state in ("await_challenge", "send_ready", "working"):
        client.send_request(CSR)
    if state in ("send_ready", "working"):
        client.receive_data(encode_frame(challenge()))
    if state == "working":
        client.send_ready(443)
    assert client.state == state
    return client


def challenge(**fields) -> dict:
    message = {"type": "challenge", "request_id": "r1", "token": TOKEN}
    return {**message, "expires_in": 60, **fields}


def certificate(**fields) -> dict:
    message = {"type": "certificate", "serial": "0a1b", "chain": PEM}
    return {**message, "not_after": "2030-01-01T00:00:00Z", **fields}


# Framing


def test_encode_frame_is_length_prefixed_compact_json():
    assert encode_frame({"type": "root"}) == b"\x00\x00\x00\x0f" + b'{"type":"root"}'


def test_encode_frame_keeps_non_ascii_as_utf8():
    assert encode_frame({"type": "é"}).endswith('"é"}'.encode())


def test_encode_frame_refuses_a_message_larger_than_a_frame():
    with pytest.raises(ValueError, match="more than"):
        encode_frame({"type": "root", "pem": "x" * MAX_FRAME})


def largest_message() -> dict:
    message = {"type": "root", "pem": ""}
    message["pem"] = "x" * (MAX_FRAME - len(encode_frame(message)) + 4)
    return message


def test_largest_frame_decodes():
    data = encode_frame(largest_message())
    assert len(data) == 4 + MAX_FRAME
    assert FrameDecoder().feed(data) == [largest_message()]


def test_frames_split_byte_by_byte_decode():
    decoder = FrameDecoder()
    data = encode_frame({"type": "a"}) + encode_frame({"type": "b", "n": 1})
    messages = []
    for i in range(len(data)):
        messages += decoder.feed(data[i : i + 1])
    assert messages == [{"type": "a"}, {"type": "b", "n": 1}]
    assert decoder.pending == 0


def test_several_frames_in_one_chunk_decode_in_order():
    data = b"".join(encode_frame({"type": str(n)}) for n in range(5))
    assert FrameDecoder().feed(data) == [{"type": str(n)} for n in range(5)]


def test_partial_frame_stays_pending():
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame({"type": "root"})[:-1]) == []
    assert decoder.pending == 4 + 14


def test_zero_length_frame_is_bad_frame():
    with pytest.raises(ScbError, match="frame length 0") as caught:
        FrameDecoder().feed(b"\x00\x00\x00\x00")
    assert caught.value.code == "bad_frame"


def test_oversize_length_is_refused_before_the_body_arrives():
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x01")
    with pytest.raises(ScbError, match="65537") as caught:
        decoder.feed(b"\x00\x01")
    assert caught.value.code == "bad_frame"
    assert decoder.pending == 0


def test_decoder_holds_only_the_unfinished_frame():
    decoder = FrameDecoder()
    data = encode_frame(largest_message())
    assert decoder.feed(data + data[:100]) == [largest_message()]
    assert decoder.pending == 100


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"type": "\xff"}', "not UTF-8: byte 10 is 0xff"),
        (b'{"type": ', "not JSON"),
        (b'{"type": "root", "n": NaN}', "NaN is not a JSON value"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b'{"type": "root", "n": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'["type", "root"]', "holds an array, not a JSON object"),
        (b'"root"', "holds 'root', not a JSON object"),
        (b'{"kind": "root"}', "no 'type' field"),
        (b'{"type": 7}', "'type' must be a string, not 7"),
        (b'{"type": null}', "'type' must be a string, not null"),
    ],
)
def test_malformed_frame_is_bad_frame(body, words):
    with pytest.raises(ScbError) as caught:
        FrameDecoder().feed(frame(body))
    assert caught.value.code == "bad_frame"
    assert words in caught.value.message


def test_decoder_stays_dead_after_an_error():
    decoder = FrameDecoder()
    with pytest.raises(ScbError) as first:
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(ScbError) as second:
        decoder.feed(encode_frame({"type": "root"}))
    assert second.value is first.value


# The server's side


def test_root_request_is_answered_and_closes():
    server = ServerProtocol()
    assert server.receive_data(encode_frame({"type": "root"})) == [RootRequested()]
    assert server.state == "send_root"
    assert json.loads(server.send_root(PEM)[4:]) == {"type": "root", "pem": PEM}
    assert server.state == "closed"


def test_request_then_ready_moves_server_to_working():
    server = ServerProtocol()
    request = {"type": "request", "protocol": 1, "csr": CSR, "validity_days": 30}
    assert server.receive_data(raw(request)) == [CertificateRequested(CSR, 30)]
    assert server.state == "send_challenge"
    server.send_challenge("r1", TOKEN, 60)
    assert server.state == "await_ready"
    assert server.receive_data(raw({"type": "ready", "port": 853})) == [Ready(853)]
    assert server.state == "working"


def test_validity_days_is_optional():
    server = ServerProtocol()
    events = server.receive_data(raw({"type": "request", "protocol": 1, "csr": CSR}))
    assert events == [CertificateRequested(CSR, None)]


def test_unknown_extra_fields_are_ignored():
    server = ServerProtocol()
    events = server.receive_data(raw({"type": "root", "colour": ["blue"]}))
    assert events == [RootRequested()]


def test_unknown_type_is_bad_request():
    error = assert_refused(ServerProtocol(), raw({"type": "hello"}), "bad_request")
    assert error.message == "no client message has type 'hello'"


def test_server_refuses_a_server_message():
    error = assert_refused(server_in("working"), raw({"type": "status"}), "bad_request")
    assert error.message == "no client message has type 'status'"


def test_duplicate_ready_is_bad_request():
    error = assert_refused(
        server_in("working"), raw({"type": "ready", "port": 443}), "bad_request"
    )
    assert error.message == "a 'ready' message is out of order in state 'working'"


def test_ready_before_challenge_is_sent_is_bad_request():
    assert_refused(
        server_in("send_challenge"), raw({"type": "ready", "port": 1}), "bad_request"
    )


def test_ready_as_first_message_is_bad_request():
    assert_refused(ServerProtocol(), raw({"type": "ready", "port": 1}), "bad_request")


def test_second_request_is_bad_request():
    request = raw({"type": "request", "protocol": 1, "csr": CSR})
    assert_refused(server_in("await_ready"), request, "bad_request")


def test_pipelined_root_and_request_is_bad_request():
    data = raw({"type": "root"}) + raw({"type": "request", "protocol": 1, "csr": CSR})
    assert_refused(ServerProtocol(), data, "bad_request")


@pytest.mark.parametrize("version", [0, 2, 100])
def test_other_protocol_version_is_unsupported_protocol(version):
    request = raw({"type": "request", "protocol": version, "csr": CSR})
    error = assert_refused(ServerProtocol(), request, "unsupported_protocol")
    assert f"version {version} is not supported" in error.message


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"protocol": True}, "field 'protocol' must be an integer, not true"),
        ({"protocol": "1"}, "field 'protocol' must be an integer, not '1'"),
        ({"protocol": 1.0}, "field 'protocol' must be an integer, not 1.0"),
        ({"protocol": None}, "must be an integer, not null"),
        ({"protocol": 1}, "the 'request' message lacks the field 'csr'"),
        ({"protocol": 1, "csr": ""}, "field 'csr' must be text, not ''"),
        ({"protocol": 1, "csr": 42}, "field 'csr' must be text, not 42"),
        ({"protocol": 1, "csr": ["x"]}, "field 'csr' must be text, not an array"),
        ({"protocol": 1, "csr": "\ud800"}, "must be text, not '\\ud800'"),
        ({"csr": CSR}, "the 'request' message lacks the field 'protocol'"),
    ],
)
def test_malformed_request_is_bad_request(fields, words):
    error = assert_refused(
        ServerProtocol(), raw({"type": "request", **fields}), "bad_request"
    )
    assert words in error.message


@pytest.mark.parametrize("days", [0, -1, 3651, True, "30", 1.5, None])
def test_validity_days_out_of_range_or_type_is_bad_request(days):
    request = {"type": "request", "protocol": 1, "csr": CSR, "validity_days": days}
    error = assert_refused(ServerProtocol(), raw(request), "bad_request")
    assert "field 'validity_days' must be an integer from 1 to 3650" in error.message


@pytest.mark.parametrize("days", [1, 3650])
def test_validity_days_bounds_are_accepted(days):
    request = {"type": "request", "protocol": 1, "csr": CSR, "validity_days": days}
    assert ServerProtocol().receive_data(raw(request)) == [
        CertificateRequested(CSR, days)
    ]


@pytest.mark.parametrize("port", [0, 65536, -443, True, "443", 443.0, None])
def test_bad_ready_port_is_bad_request(port):
    ready = raw({"type": "ready", "port": port})
    error = assert_refused(server_in("await_ready"), ready, "bad_request")
    assert "field 'port' must be an integer from 1 to 65535" in error.message


def test_long_bad_value_is_truncated_in_the_message():
    request = {"type": "request", "protocol": 1, "csr": CSR, "validity_days": "9" * 500}
    error = assert_refused(ServerProtocol(), raw(request), "bad_request")
    assert error.message.endswith("not '" + "9" * 56 + "...")


def test_violation_can_still_be_answered_with_an_error():
    server = server_in("working")
    error = assert_refused(server, raw({"type": "ready", "port": 443}), "bad_request")
    reply = json.loads(server.send_error(error)[4:])
    assert reply == {"type": "error", "code": "bad_request", "message": error.message}
    with pytest.raises(RuntimeError):
        server.send_error(error)


def test_send_error_includes_retry_after():
    error = ScbError("rate_limited", "too many requests from 10.0.0.5", 120)
    data = ServerProtocol().send_error(error)
    assert json.loads(data[4:]) == {
        "type": "error",
        "code": "rate_limited",
        "message": "too many requests from 10.0.0.5",
        "retry_after": 120,
    }


def test_status_may_repeat_before_the_certificate():
    server = server_in("working")
    for stage in ("resolving", "connecting", "awaiting_approval", "signing"):
        server.send_status(stage)
    server.send_certificate("0a1b", "2030-01-01T00:00:00Z", PEM)
    assert server.state == "closed"


def test_nothing_may_follow_the_certificate():
    server = server_in("working")
    server.send_certificate("0a1b", "2030-01-01T00:00:00Z", PEM)
    with pytest.raises(RuntimeError, match="cannot send 'status' in state 'closed'"):
        server.send_status("signing")
    with pytest.raises(RuntimeError, match="already sent its last message"):
        server.send_error(ScbError("internal", "too late"))


def test_data_after_close_is_dropped():
    server = ServerProtocol()
    server.receive_data(raw({"type": "root"}))
    server.send_root(PEM)
    assert server.receive_data(b"\x00\x00\x00\x00 garbage") == []
    assert server.state == "closed"


@pytest.mark.parametrize(
    "send",
    [
        lambda server: server.send_root(PEM),
        lambda server: server.send_challenge("r1", TOKEN, 60),
        lambda server: server.send_status("signing"),
        lambda server: server.send_certificate("01", "2030-01-01T00:00:00Z", PEM),
    ],
)
def test_server_cannot_speak_out_of_turn(send):
    with pytest.raises(RuntimeError, match="in state 'await_first'"):
        send(ServerProtocol())


@pytest.mark.parametrize(
    ("send", "words"),
    [
        (lambda s: s.send_challenge("r1", "short", 60), "43 base64url characters"),
        (lambda s: s.send_challenge("r 1", TOKEN, 60), "'request_id' must be 1 to"),
        (lambda s: s.send_challenge("r" * 65, TOKEN, 60), "'request_id' must be 1 to"),
        (lambda s: s.send_challenge("r1", TOKEN, 0), "'expires_in' must be"),
    ],
)
def test_server_refuses_to_send_a_bad_challenge(send, words):
    server = server_in("send_challenge")
    with pytest.raises(ValueError, match=words):
        send(server)
    assert server.state == "send_challenge"


def test_server_refuses_to_send_an_unknown_stage():
    with pytest.raises(ValueError, match="'stage' must be one of resolving"):
        server_in("working").send_status("dreaming")


# The client's side


def test_issuance_through_a_fake_pipe():
    server, client = ServerProtocol(), ClientProtocol()

    assert deliver(client.send_request(CSR, 90), server) == [
        CertificateRequested(CSR, 90)
    ]
    assert deliver(server.send_challenge("r1", TOKEN, 60), client) == [
        ChallengeIssued("r1", TOKEN, 60)
    ]
    assert client.state == "send_ready"
    assert deliver(client.send_ready(443), server) == [Ready(443)]

    stages = server.send_status("resolving") + server.send_status("signing")
    assert deliver(stages, client) == [
        StageChanged("resolving"),
        StageChanged("signing"),
    ]
    data = server.send_certificate("0A1B", "2030-01-01T00:00:00+00:00", PEM)
    assert deliver(data, client) == [
        CertificateIssued("0A1B", "2030-01-01T00:00:00+00:00", PEM)
    ]
    assert server.state == client.state == "closed"


def test_bootstrap_through_a_fake_pipe():
    server, client = ServerProtocol(), ClientProtocol()
    assert deliver(client.send_root_request(), server) == [RootRequested()]
    assert deliver(server.send_root(PEM), client) == [RootSent(PEM)]
    assert server.state == client.state == "closed"


def test_refusal_reaches_the_client_as_an_event():
    server, client = ServerProtocol(), ClientProtocol()
    server.receive_data(client.send_request(CSR, 90))
    error = ScbError("banned", "10.0.0.5 is banned for 3600 seconds", 3600)
    events = client.receive_data(server.send_error(error))
    assert events == [ErrorReceived("banned", error.message, 3600)]
    assert client.state == "closed"


@pytest.mark.parametrize(
    "state", ["send_first", "await_root", "await_challenge", "send_ready", "working"]
)
def test_error_may_arrive_in_any_client_state(state):
    client = client_in(state)
    data = encode_frame({"type": "error", "code": "timeout", "message": "too slow"})
    assert client.receive_data(data) == [ErrorReceived("timeout", "too slow", None)]
    assert client.state == "closed"


def test_client_refuses_status_before_it_is_ready():
    status = raw({"type": "status", "stage": "resolving"})
    assert_refused(client_in("send_ready"), status, "bad_request")


def test_client_refuses_a_certificate_before_the_challenge():
    assert_refused(client_in("await_challenge"), raw(certificate()), "bad_request")


def test_client_refuses_a_client_message():
    assert_refused(client_in("working"), raw({"type": "ready"}), "bad_request")


def test_client_drops_data_after_the_certificate():
    client = client_in("working")
    data = encode_frame(certificate()) + encode_frame({"type": "status"})
    assert client.receive_data(data) == [
        CertificateIssued("0a1b", "2030-01-01T00:00:00Z", PEM)
    ]
    assert client.receive_data(b"more") == []


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (challenge(token=TOKEN[:-1]), "'token' must be 43 base64url characters"),
        (challenge(token=TOKEN[:-1] + "="), "'token' must be 43 base64url"),
        (challenge(request_id="r\n1"), "'request_id' must be 1 to 64 visible"),
        (challenge(expires_in=0), "'expires_in' must be an integer from 1"),
        (challenge(expires_in="60"), "'expires_in' must be an integer from 1"),
    ],
)
def test_malformed_challenge_is_bad_request(message, words):
    error = assert_refused(client_in("await_challenge"), raw(message), "bad_request")
    assert words in error.message


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (certificate(serial="0x1b"), "'serial' must be 1 to 40 hex digits"),
        (certificate(serial="a" * 41), "'serial' must be 1 to 40 hex digits"),
        (certificate(not_after="2030-01-01T00:00:00"), "with an offset"),
        (certificate(not_after="next year"), "with an offset, not 'next year'"),
        (certificate(chain=None), "'chain' must be text, not null"),
        ({"type": "status", "stage": "done"}, "'stage' must be one of resolving"),
        ({"type": "error", "code": "oops", "message": "x"}, "a JASC/1 error code"),
        ({"type": "error", "code": ["x"], "message": "x"}, "code, not an array"),
        ({"type": "error", "code": "internal"}, "lacks the field 'message'"),
        (
            {"type": "error", "code": "timeout", "message": "x", "retry_after": -1},
            "'retry_after' must be an integer from 0",
        ),
    ],
)
def test_malformed_server_message_is_bad_request(message, words):
    error = assert_refused(client_in("working"), raw(message), "bad_request")
    assert words in error.message


def test_client_cannot_send_twice():
    client = client_in("await_challenge")
    with pytest.raises(RuntimeError, match="cannot send 'request'"):
        client.send_request(CSR)


@pytest.mark.parametrize(
    ("send", "words"),
    [
        (lambda c: c.send_request(""), "'csr' must be text"),
        (lambda c: c.send_request(CSR, 0), "'validity_days' must be an integer"),
    ],
)
def test_client_refuses_to_send_a_bad_request(send, words):
    client = ClientProtocol()
    with pytest.raises(ValueError, match=words):
        send(client)
    assert client.state == "send_first"


def test_client_refuses_to_send_a_bad_port():
    with pytest.raises(ValueError, match="'port' must be an integer from 1 to 65535"):
        client_in("send_ready").send_ready(70000)
