"""Properties of JASC/1 that must hold for every input, checked by hypothesis."""

import re
from datetime import UTC
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from scb_core.errors import ERROR_CODES, ScbError
from scb_core.protocol import (
    MAX_FRAME,
    STAGES,
    CertificateIssued,
    CertificateRequested,
    ChallengeIssued,
    ClientProtocol,
    ErrorReceived,
    FrameDecoder,
    Ready,
    RootRequested,
    ServerProtocol,
    StageChanged,
    encode_frame,
)
from tests.test_protocol import CSR, PEM, TOKEN, client_in, server_in

SERVER_STATES = ("await_first", "send_challenge", "await_ready", "working")
CLIENT_STATES = ("send_first", "await_root", "await_challenge", "send_ready", "working")

# Values that some field of some message accepts, so that random messages
# sometimes get past framing and type checks into the field rules.
PLAUSIBLE = st.sampled_from(
    [1, 0, 443, 3650, True, None, "r1", TOKEN, CSR, PEM, "signing", "0a1b"]
    + ["2030-01-01T00:00:00Z", "internal", "", [], {}]
)
FIELDS = st.sampled_from(
    ["protocol", "csr", "validity_days", "port", "pem", "request_id", "token"]
    + ["expires_in", "stage", "serial", "not_after", "chain", "code", "message"]
    + ["retry_after"]
)
# Known types, plus a few that no side knows.
TYPES = st.sampled_from(
    ["root", "request", "ready", "challenge", "status", "certificate", "error"]
    + ["", "Root", "hello"]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
messages = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    TYPES,
    st.dictionaries(FIELDS | st.text(max_size=5), PLAUSIBLE | json_values),
)
frames = messages.map(encode_frame)
garbage = st.one_of(
    st.binary(max_size=40),
    st.integers(0, 2**32 - 1).map(lambda n: n.to_bytes(4, "big")),
    # Bulk, to push a declared length near the limit and past it.
    st.builds(
        lambda size, fill: fill * size,
        st.integers(0, MAX_FRAME + 8),
        st.sampled_from([b"\x00", b" ", b"{"]),
    ),
)


@st.composite
def chunked(draw, pieces: st.SearchStrategy[list[bytes]]) -> list[bytes]:
    """Join the drawn pieces and cut the stream again at random places."""
    stream = b"".join(draw(pieces))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[start:end] for start, end in pairwise(bounds)]


@settings(max_examples=150)
@given(chunked(st.lists(frames | garbage, max_size=6)))
def test_decoder_raises_only_scb_error_and_holds_at_most_one_frame(chunks):
    decoder = FrameDecoder()
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except ScbError as error:
            assert error.code == "bad_frame"
            return
        assert decoder.pending <= 4 + MAX_FRAME


# Garbage only ever comes last: whatever follows it is never read.
frames_then_garbage = st.builds(
    lambda head, tail: [*head, tail],
    st.lists(frames, max_size=4),
    garbage | st.just(b""),
)


@settings(max_examples=150)
@given(
    st.sampled_from(SERVER_STATES).map(server_in)
    | st.sampled_from(CLIENT_STATES).map(client_in),
    chunked(frames_then_garbage),
)
def test_either_side_raises_only_scb_error_on_any_bytes(side, chunks):
    for chunk in chunks:
        try:
            side.receive_data(chunk)
        except ScbError as error:
            assert error.code in ("bad_frame", "bad_request", "unsupported_protocol")
            assert side.state == "closed"
            return


# Each side in a state, with a message type it expects there: random fields
# on these reach the field rules, which random types seldom do.
EXPECTED = [
    (lambda: server_in("await_first"), "root"),
    (lambda: server_in("await_first"), "request"),
    (lambda: server_in("await_ready"), "ready"),
    (lambda: client_in("await_root"), "root"),
    (lambda: client_in("await_challenge"), "challenge"),
    (lambda: client_in("working"), "status"),
    (lambda: client_in("working"), "certificate"),
    (lambda: client_in("working"), "error"),
]


@settings(max_examples=300)
@given(
    st.sampled_from(EXPECTED),
    st.dictionaries(FIELDS, PLAUSIBLE | json_values, max_size=6),
)
def test_expected_message_with_any_fields_is_an_event_or_bad_request(expected, fields):
    make_side, kind = expected
    side = make_side()
    try:
        events = side.receive_data(encode_frame({**fields, "type": kind}))
    except ScbError as error:
        assert error.code in ("bad_request", "unsupported_protocol")
        assert side.state == "closed"
    else:
        assert len(events) == 1


@given(messages)
def test_any_message_survives_a_frame_round_trip(message):
    assert FrameDecoder().feed(encode_frame(message)) == [message]


def deliver(data: bytes, side, size: int) -> list:
    events = []
    for start in range(0, len(data), size):
        events += side.receive_data(data[start : start + size])
    return events


@settings(max_examples=60)
@given(
    csr=st.text(min_size=1),
    validity_days=st.none() | st.integers(1, 3650),
    request_id=st.from_regex(r"[!-~]{1,64}", fullmatch=True),
    token=st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True),
    expires_in=st.integers(1, 2**31 - 1),
    port=st.integers(1, 65535),
    stages=st.lists(st.sampled_from(STAGES), max_size=5),
    serial=st.from_regex(r"[0-9a-fA-F]{1,40}", fullmatch=True),
    not_after=st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
    chain=st.text(min_size=1),
    size=st.integers(1, 64),
)
def test_valid_issuance_round_trips_between_the_two_sides(
    csr, validity_days, request_id, token, expires_in, port, stages, serial,
    not_after, chain, size,
):  # fmt: skip
    server, client = ServerProtocol(), ClientProtocol()

    request = client.send_request(csr, validity_days)
    assert deliver(request, server, size) == [CertificateRequested(csr, validity_days)]
    data = server.send_challenge(request_id, token, expires_in)
    assert deliver(data, client, size) == [
        ChallengeIssued(request_id, token, expires_in)
    ]
    assert deliver(client.send_ready(port), server, size) == [Ready(port)]

    data = b"".join(server.send_status(stage) for stage in stages)
    assert deliver(data, client, size) == [StageChanged(s) for s in stages]
    data = server.send_certificate(serial, not_after, chain)
    assert deliver(data, client, size) == [CertificateIssued(serial, not_after, chain)]


@given(
    code=st.sampled_from(sorted(ERROR_CODES)),
    message=st.text(min_size=1),
    retry_after=st.none() | st.integers(0, 2**31 - 1),
)
def test_any_error_round_trips_to_the_client(code, message, retry_after):
    data = ServerProtocol().send_error(ScbError(code, message, retry_after))
    events = ClientProtocol().receive_data(data)
    assert events == [ErrorReceived(code, message, retry_after)]


# The server's conversation, one letter per move: the client's r (root),
# q (request), y (ready) and u (a type nobody knows); the server's R (root),
# c (challenge), s (status), C (certificate) and E (error). A history is
# legal while it is a prefix of "rR" or "qcys*C"; the server may also give up
# with E at any time before it has sent its last word.
LEGAL_SO_FAR = re.compile(r"(rR?|q(c(ys*C?)?)?)?")
STATE_AFTER = {
    "": "await_first",
    "r": "send_root",
    "q": "send_challenge",
    "qc": "await_ready",
}
CLIENT_MOVES = {
    "r": ({"type": "root"}, RootRequested),
    "q": ({"type": "request", "protocol": 1, "csr": CSR}, CertificateRequested),
    "y": ({"type": "ready", "port": 443}, Ready),
    "u": ({"type": "unheard_of"}, None),
}
SERVER_MOVES = {
    "R": lambda server: server.send_root(PEM),
    "c": lambda server: server.send_challenge("r1", TOKEN, 60),
    "s": lambda server: server.send_status("connecting"),
    "C": lambda server: server.send_certificate("01", "2030-01-01T00:00Z", PEM),
}
LETTERS = "".join(CLIENT_MOVES) + "".join(SERVER_MOVES) + "E"


class ServerConversation(RuleBasedStateMachine):
    """Moves in random order; the server must take exactly the legal ones."""

    def __init__(self) -> None:
        super().__init__()
        self.server = ServerProtocol()
        self.history = ""  # the moves accepted so far, one letter each
        self.closed = False  # by the server's last word or a refused message
        self.answered = False  # the server has sent its last word

    def legal_moves(self) -> list[str]:
        if self.closed:
            return []
        return [x for x in LETTERS if LEGAL_SO_FAR.fullmatch(self.history + x)]

    # Random moves alone would seldom get past the first message, so each run
    # first plays a legal opening; every state then gets its share of mistakes.
    @initialize(opening=st.sampled_from(["", "r", "q", "qc", "qcy", "qcys"]))
    def play_opening(self, opening):
        for letter in opening:
            self.move(letter)

    @rule(letter=st.sampled_from(LETTERS))
    def any_move(self, letter):
        self.move(letter)

    def move(self, letter: str) -> None:
        if letter in CLIENT_MOVES:
            self.client_moves(letter)
        elif letter == "E":
            self.server_gives_up()
        else:
            self.server_moves(letter)

    def client_moves(self, letter: str) -> None:
        message, event_class = CLIENT_MOVES[letter]
        data = encode_frame(message)
        if self.closed:
            assert self.server.receive_data(data) == []
        elif letter in self.legal_moves():
            [event] = self.server.receive_data(data)
            assert isinstance(event, event_class)
            self.history += letter
        else:
            try:
                self.server.receive_data(data)
            except ScbError as error:
                assert error.code == "bad_request"
            else:
                raise AssertionError(f"accepted {letter!r} after {self.history!r}")
            self.closed = True

    def server_moves(self, letter: str) -> None:
        move = SERVER_MOVES[letter]
        if letter not in self.legal_moves():
            try:
                move(self.server)
            except RuntimeError:
                return
            raise AssertionError(f"sent {letter!r} after {self.history!r}")
        move(self.server)
        self.history += letter
        self.closed = self.answered = letter in "RC"

    def server_gives_up(self) -> None:
        error = ScbError("internal", "the store is unavailable")
        if self.answered:
            try:
                self.server.send_error(error)
            except RuntimeError:
                return
            raise AssertionError("sent a second last word")
        self.server.send_error(error)
        self.closed = self.answered = True

    @invariant()
    def state_follows_the_history(self):
        expected = "closed" if self.closed else STATE_AFTER.get(self.history)
        assert self.server.state == (expected or "working")


ServerConversation.TestCase.settings = settings(max_examples=300, stateful_step_count=4)
test_server_accepts_only_the_legal_conversation = ServerConversation.TestCase
