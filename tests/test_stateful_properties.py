"""Stateful hypothesis tests: both JASC/1 ends, the frame decoder, and the
CSR/policy layer, each driven by random sequences of moves against a model.

The models are deliberately plain: a regular expression over one letter per
move for the conversations, a list of expected messages for the decoder, and
a list of names and subject fields for the CSR whose verdict the model
predicts before `check_csr` gives its own.
"""

import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from scb_core.errors import ScbError
from scb_core.keys import generate_key
from scb_core.policy import Policy, check_csr
from scb_core.protocol import (
    MAX_FRAME,
    ClientProtocol,
    FrameDecoder,
    ServerProtocol,
    encode_frame,
)
from tests.test_protocol import CSR, PEM, TOKEN

# Every conversation JASC/1 allows, one letter per move. Client: r root,
# q request, y ready, v revoke, p proof. Server: R root, c challenge,
# s status, C certificate, n nonce, V revoked. E (the server's error) may end
# any conversation that is not over yet; u is a type nobody knows.
LEGAL_SO_FAR = re.compile(r"(rR?|q(c(ys*C?)?)?|v(n(pV?)?)?)?")
LAST_WORDS = "RCV"

CLIENT_SAYS = {
    "r": {"type": "root"},
    "q": {"type": "request", "protocol": 1, "csr": CSR},
    "y": {"type": "ready", "port": 443},
    "v": {"type": "revoke", "protocol": 1, "serial": "0A", "reason": "superseded"},
    "p": {"type": "proof", "signature": "c2lnbmVk"},
    "u": {"type": "unheard_of"},
}
SERVER_SAYS = {
    "R": {"type": "root", "pem": PEM},
    "c": {"type": "challenge", "request_id": "r1", "token": TOKEN, "expires_in": 60},
    "s": {"type": "status", "stage": "connecting"},
    "C": {
        "type": "certificate",
        "serial": "0A",
        "not_after": "2030-01-01T00:00:00Z",
        "chain": PEM,
    },
    "n": {"type": "nonce", "nonce": TOKEN},
    "V": {"type": "revoked", "serial": "0A"},
    "E": {"type": "error", "code": "internal", "message": "gave up"},
    "u": {"type": "unheard_of"},
}
CLIENT_SENDS = {
    "r": lambda side: side.send_root_request(),
    "q": lambda side: side.send_request(CSR),
    "y": lambda side: side.send_ready(443),
    "v": lambda side: side.send_revoke("0A", "superseded"),
    "p": lambda side: side.send_proof(b"signed"),
}
SERVER_SENDS = {
    "R": lambda side: side.send_root(PEM),
    "c": lambda side: side.send_challenge("r1", TOKEN, 60),
    "s": lambda side: side.send_status("connecting"),
    "C": lambda side: side.send_certificate("0A", "2030-01-01T00:00:00Z", PEM),
    "n": lambda side: side.send_nonce(b"\x01" * 32),
    "V": lambda side: side.send_revoked("0A"),
    "E": lambda side: side.send_error(ScbError("internal", "gave up")),
}
OPENINGS = ["", "r", "q", "qc", "qcy", "qcys", "v", "vn", "vnp"]


def legal(history: str, letter: str) -> bool:
    if letter == "E":
        return not history.endswith(tuple(LAST_WORDS)) and "E" not in history
    return LEGAL_SO_FAR.fullmatch(history + letter) is not None


class Conversation(RuleBasedStateMachine):
    """One end of JASC/1 under random moves from both sides.

    `ours` are the letters this end sends (its caller's moves), `theirs` the
    ones it receives. The end must take exactly the legal moves, refuse the
    peer's illegal ones with bad_request and our own with RuntimeError.
    """

    make_side: type
    ours: dict
    theirs: dict

    def __init__(self) -> None:
        super().__init__()
        self.side = self.make_side()
        self.history = ""
        self.closed = False
        self.answered = False  # the server has said its last word

    @initialize(opening=st.sampled_from(OPENINGS))
    def play_opening(self, opening):
        for letter in opening:
            self.move(letter)

    @rule(letter=st.sampled_from("rqyvpuRcsCnVE"))
    def any_move(self, letter):
        self.move(letter)

    @rule(size=st.integers(1, 7))
    def a_legal_move_split_into_pieces(self, size):
        moves = [x for x in self.theirs if not self.closed and legal(self.history, x)]
        if not moves:
            return
        letter = moves[0]
        data = encode_frame(self.theirs[letter])
        events = []
        for start in range(0, len(data), size):
            events += self.side.receive_data(data[start : start + size])
        assert len(events) == 1
        self.accept(letter)

    def move(self, letter: str) -> None:
        if letter in self.ours:
            self.we_send(letter)
        elif letter in self.theirs:
            self.they_send(letter)

    def we_send(self, letter: str) -> None:
        if letter == "E":
            self.we_give_up()
            return
        if self.closed or not legal(self.history, letter):
            try:
                self.ours[letter](self.side)
            except RuntimeError:
                return
            raise AssertionError(f"sent {letter!r} after {self.history!r}")
        self.ours[letter](self.side)
        self.accept(letter)

    def they_send(self, letter: str) -> None:
        data = encode_frame(self.theirs[letter])
        if self.closed:
            assert self.side.receive_data(data) == []
            return
        if letter != "u" and legal(self.history, letter):
            assert len(self.side.receive_data(data)) == 1
            self.accept(letter)
            return
        try:
            self.side.receive_data(data)
        except ScbError as error:
            assert error.code == "bad_request"
        else:
            raise AssertionError(f"accepted {letter!r} after {self.history!r}")
        self.closed = True
        self.history += "x"  # nothing more is legal

    def we_give_up(self) -> None:
        """The server's error is allowed once, in any state, even after it
        refused the client's message; never after its last word."""
        if self.answered:
            try:
                self.side.send_error(ScbError("internal", "gave up"))
            except RuntimeError:
                return
            raise AssertionError(f"a second last word after {self.history!r}")
        self.side.send_error(ScbError("internal", "gave up"))
        self.history += "E"
        self.closed = self.answered = True

    def accept(self, letter: str) -> None:
        self.history += letter
        self.closed = letter in LAST_WORDS + "E"
        self.answered = self.answered or (letter in self.ours and self.closed)

    @invariant()
    def closed_exactly_when_the_model_says(self):
        assert (self.side.state == "closed") == self.closed


class ServerConversation(Conversation):
    make_side = ServerProtocol
    ours = SERVER_SENDS
    theirs = CLIENT_SAYS


class ClientConversation(Conversation):
    make_side = ClientProtocol
    ours = CLIENT_SENDS
    theirs = SERVER_SAYS


ServerConversation.TestCase.settings = settings(
    max_examples=300, stateful_step_count=6, deadline=None
)
ClientConversation.TestCase.settings = settings(
    max_examples=300, stateful_step_count=6, deadline=None
)
test_server_takes_exactly_the_legal_moves_of_every_flow = ServerConversation.TestCase
test_client_takes_exactly_the_legal_moves_of_every_flow = ClientConversation.TestCase


# The decoder, fed frames and chunks in any rhythm. ------------------------------

payloads = st.dictionaries(
    st.text(max_size=4), st.integers() | st.text(max_size=20), max_size=4
).map(lambda fields: {**fields, "type": "root"})


class Decoder(RuleBasedStateMachine):
    """Bytes queue up; whatever completes comes out whole and in order."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder = FrameDecoder()
        self.unsent = b""
        self.expected: list[dict] = []
        self.dead = False

    @rule(message=payloads)
    def a_frame_is_queued(self, message):
        self.unsent += encode_frame(message)
        self.expected.append(message)

    @rule(size=st.integers(0, 300))
    def some_bytes_arrive(self, size):
        chunk, self.unsent = self.unsent[:size], self.unsent[size:]
        if self.dead:
            return
        got = self.decoder.feed(chunk)
        assert got == self.expected[: len(got)]
        del self.expected[: len(got)]

    @rule(length=st.sampled_from([0, MAX_FRAME + 1, 2**31, 2**32 - 1]))
    def a_bad_header_arrives(self, length):
        if self.dead:
            return
        try:
            self.decoder.feed(self.unsent + length.to_bytes(4, "big"))
        except ScbError as error:
            assert error.code == "bad_frame"
            assert str(length) in error.message
        else:
            raise AssertionError(f"length {length} accepted")
        self.dead = True
        self.unsent = b""

    @invariant()
    def never_more_than_one_frame_is_held(self):
        assert self.decoder.pending <= 4 + MAX_FRAME

    @invariant()
    def a_dead_decoder_stays_dead(self):
        if self.dead:
            try:
                self.decoder.feed(b"\x00")
            except ScbError:
                return
            raise AssertionError("a dead decoder took bytes")


Decoder.TestCase.settings = settings(max_examples=100, deadline=None)
test_decoder_delivers_whole_frames_in_order_in_any_rhythm = Decoder.TestCase


# The CSR and the policy. ------------------------------------------------------

POLICY = Policy(allowed_domains=("home.arpa", "lab.internal"), max_names=5)
GOOD_NAMES = st.sampled_from(
    [
        "a.home.arpa",
        "B.Home.Arpa",
        "x-1.lab.internal",
        "home.arpa",
        "xn--bcher-kva.home.arpa",
    ]
)
BAD_NAMES = {
    "evil.example": "policy_denied",
    "*.home.arpa": "policy_denied",
    "a_b.home.arpa": "policy_denied",
    "xn--zz.home.arpa": "policy_denied",
    "10.0.0.1": "policy_denied",
    "-a.home.arpa": "policy_denied",
}
GOOD_FIELDS = {
    "O": (NameOID.ORGANIZATION_NAME, "Lab"),
    "OU": (NameOID.ORGANIZATIONAL_UNIT_NAME, "Infra"),
    "C": (NameOID.COUNTRY_NAME, "DE"),
    "ST": (NameOID.STATE_OR_PROVINCE_NAME, "Bavaria"),
    "L": (NameOID.LOCALITY_NAME, "Munich"),
}
BAD_FIELDS = {
    "control": ((NameOID.ORGANIZATION_NAME, "La\x00b"), "bad_csr"),
    "email": ((NameOID.EMAIL_ADDRESS, "a@b.c"), "policy_denied"),
    "long": ((NameOID.LOCALITY_NAME, "x" * 129), "policy_denied"),
}
KEYS = {"ec-p256": generate_key("ec-p256"), "ec-p384": generate_key("ec-p384")}


class CsrPolicy(RuleBasedStateMachine):
    """A CSR built up move by move; `check_csr` must agree with the model."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.fields: list[tuple] = []
        self.key_type = "ec-p256"
        # The code the first bad name, or else the first bad field, earns:
        # check_csr reads the names before the subject.
        self.name_refusal: str | None = None
        self.field_refusal: str | None = None
        self.validity: int | None = None

    @rule(name=GOOD_NAMES)
    def a_good_name(self, name):
        self.names.append(name)

    @rule(name=st.sampled_from(sorted(BAD_NAMES)))
    def a_bad_name(self, name):
        self.names.append(name)
        self.name_refusal = self.name_refusal or BAD_NAMES[name]

    @rule(key=st.sampled_from(sorted(GOOD_FIELDS)))
    def a_good_subject_field(self, key):
        if any(f[0] == GOOD_FIELDS[key][0] for f in self.fields):
            return
        self.fields.append(GOOD_FIELDS[key])

    @rule(which=st.sampled_from(sorted(BAD_FIELDS)))
    def a_bad_subject_field(self, which):
        field, code = BAD_FIELDS[which]
        self.fields.append(field)
        self.field_refusal = self.field_refusal or code

    @rule(key_type=st.sampled_from(sorted(KEYS)))
    def another_key(self, key_type):
        self.key_type = key_type

    @rule(days=st.none() | st.integers(-5, 500))
    def a_validity(self, days):
        self.validity = days

    def csr(self) -> str:
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name(
                [x509.NameAttribute(o, v, _validate=False) for o, v in self.fields]
            )
        )
        if self.names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in self.names]),
                critical=False,
            )
        key = KEYS[self.key_type]
        return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM).decode()

    def predicted(self) -> str | None:
        """The model's verdict: None to issue, else the one refusal code."""
        if not self.names:
            return "bad_csr"
        if len(self.names) > POLICY.max_names:
            return "policy_denied"
        if self.name_refusal or self.field_refusal:
            return self.name_refusal or self.field_refusal
        if self.validity is not None and not 1 <= self.validity <= 397:
            return "policy_denied"
        return None

    @invariant()
    def check_csr_agrees_with_the_model(self):
        expected = self.predicted()
        try:
            spec = check_csr(self.csr(), self.validity, POLICY)
        except ScbError as error:
            assert error.code == expected, (error, self.names, self.fields)
            return
        assert expected is None, f"issued although the model expected {expected}"
        assert spec.names == list(dict.fromkeys(n.lower() for n in self.names))
        assert spec.validity_days == (self.validity or POLICY.default_validity_days)
        assert len(spec.subject) == len(self.fields)


CsrPolicy.TestCase.settings = settings(
    max_examples=60, stateful_step_count=6, deadline=None
)
test_check_csr_agrees_with_a_model_of_the_policy = CsrPolicy.TestCase
