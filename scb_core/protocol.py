"""JASC/1 without sockets: bytes in, events out, bytes back.

Theory of operation
-------------------
A JASC/1 connection carries one short conversation. Each message travels in a
frame: a 4-byte big-endian length, then that many bytes of a UTF-8 JSON object
whose ``type`` names the message. :class:`FrameDecoder` turns a byte stream
into such objects, refuses anything else, and never holds more than one frame.

Above the frames, each end is a small state machine: :class:`ServerProtocol`
for the certifier, :class:`ClientProtocol` for the host. Neither owns a
socket. The caller passes received bytes to ``receive_data`` and gets back
events, frozen dataclasses named for what the peer did; it calls a ``send_*``
method and gets back the bytes to write. Who may say what, and where that
leaves the conversation, is written once in the transition tables below; the
classes only look moves up in them. The legal conversations are::

    bootstrap:  client root      server root
    issuance:   client request   server challenge
                client ready     server status*, then certificate
    revocation: client revoke    server nonce
                client proof     server revoked

and the server may send ``error`` instead of any of its moves. Each state
names whose turn it is: in ``send_*`` states (and the server's ``working``
and ``revoking``) a side waits for its own caller, so anything the peer says
is out of order. Nonces and proofs travel as base64url without padding, as
tokens do; the events carry them as bytes.

A peer's mistake raises :class:`ScbError` (``bad_frame``, ``bad_request`` or
``unsupported_protocol``) and closes that side. The server may still answer
with ``send_error``: an error is its last word, allowed once, in any state.
Our own mistakes, sending out of turn or a value the peer would refuse, are
programming errors and raise ``RuntimeError`` or ``ValueError``. A closed side
drops whatever else arrives, unread: the caller is about to close the socket.
"""

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from scb_core.errors import ERROR_CODES, ScbError

MAX_FRAME = 65536
PROTOCOL_VERSION = 1
STAGES = ("resolving", "connecting", "awaiting_approval", "signing")

_HEADER = 4
_MAX_VALIDITY_DAYS = 3650  # a sanity bound only; policy sets the real maximum
_MAX_SECONDS = 2**31 - 1  # JASC/1 sets no bound; this one suits every timer
_SHOWN = 60  # characters of a peer's value quoted back in an error message

# Text excludes unpaired surrogates: JSON can escape them, UTF-8 cannot hold
# them, and they would blow up whoever writes the value out later.
_TEXT = re.compile(r"[^\ud800-\udfff]+")
_REQUEST_ID = re.compile(r"[!-~]{1,64}")  # visible ASCII: it ends up in a line
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, no padding
_SERIAL = re.compile(r"[0-9A-Fa-f]{1,40}")  # at most 20 octets (RFC 5280)
_REASON = re.compile(r"[A-Za-z]{1,32}")  # an RFC 5280 name; the server checks which
_PROOF = re.compile(r"[A-Za-z0-9_-]{1,1366}")  # up to 1024 bytes: RSA-4096 needs 512


def encode_frame(message: dict) -> bytes:
    """Frame *message* as compact UTF-8 JSON; ValueError if it cannot be."""
    text = json.dumps(
        message, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    body = text.encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ValueError(
            f"the message encodes to {len(body)} bytes, "
            f"more than the {MAX_FRAME} a frame holds"
        )
    return len(body).to_bytes(_HEADER, "big") + body


class FrameDecoder:
    """Split a byte stream into JSON objects, holding at most one frame.

    A length header out of range is refused as soon as its fourth byte is in,
    so a peer can never make us buffer more than ``4 + MAX_FRAME`` bytes.
    After an error the decoder is dead and repeats that error on every feed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: ScbError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make up a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict]:
        """Add *data*; return every message it completes, in order."""
        if self._error is not None:
            raise self._error

        messages = []
        rest = memoryview(data)
        try:
            while rest:
                wanted = self._frame_size() - len(self._buffer)
                self._buffer += rest[:wanted]
                rest = rest[wanted:]
                message = self._take_frame()
                if message is not None:
                    messages.append(message)
        except ScbError as error:
            # Good frames earlier in this chunk go too: the connection is lost.
            self._error = error
            self._buffer.clear()
            raise
        return messages

    def _frame_size(self) -> int:
        if len(self._buffer) < _HEADER:
            return _HEADER
        return _HEADER + int.from_bytes(self._buffer[:_HEADER], "big")

    def _take_frame(self) -> dict | None:
        if len(self._buffer) < _HEADER:
            return None
        length = self._frame_size() - _HEADER
        if not 1 <= length <= MAX_FRAME:
            raise ScbError(
                "bad_frame", f"frame length {length} is outside 1 to {MAX_FRAME}"
            )
        if len(self._buffer) < _HEADER + length:
            return None

        body = bytes(self._buffer[_HEADER:])
        self._buffer.clear()
        return _decode(body)


def _decode(body: bytes) -> dict:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = body[error.start]
        raise ScbError(
            "bad_frame", f"the frame is not UTF-8: byte {error.start} is {bad:#04x}"
        ) from None
    try:
        message = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise ScbError("bad_frame", f"the frame is not JSON: {error}") from None

    if not isinstance(message, dict):
        raise ScbError(
            "bad_frame", f"the frame holds {_show(message)}, not a JSON object"
        )
    if "type" not in message:
        raise ScbError("bad_frame", "the message has no 'type' field")
    if not isinstance(message["type"], str):
        raise ScbError(
            "bad_frame",
            f"the message 'type' must be a string, not {_show(message['type'])}",
        )
    return message


def _refuse_constant(name: str) -> None:
    # Python's json reads NaN and Infinity; RFC 8259 does not allow them.
    raise ValueError(f"{name} is not a JSON value")


# Events: what the peer did, named in the past tense.


@dataclass(frozen=True)
class RootRequested:
    """The client asked for the CA root certificate (bootstrap)."""


@dataclass(frozen=True)
class CertificateRequested:
    """The client asked for a certificate for the key and names in its CSR."""

    csr_pem: str
    validity_days: int | None


@dataclass(frozen=True)
class Ready:
    """The client listens for the challenge connection on *port*."""

    port: int


@dataclass(frozen=True)
class RootSent:
    """The server sent the CA root certificate."""

    pem: str


@dataclass(frozen=True)
class ChallengeIssued:
    """The server will connect back and expect *token* bound to our key."""

    request_id: str
    token: str
    expires_in: int


@dataclass(frozen=True)
class StageChanged:
    """The server moved to another stage of its work on the request."""

    stage: str


@dataclass(frozen=True)
class CertificateIssued:
    """The server issued the certificate; *chain_pem* starts with the leaf."""

    serial: str
    not_after: str
    chain_pem: str


@dataclass(frozen=True)
class RevocationRequested:
    """The client asked to revoke a certificate whose key it says it holds."""

    serial: str
    reason: str


@dataclass(frozen=True)
class ProofSent:
    """The client signed the nonce with the certificate's key."""

    signature: bytes


@dataclass(frozen=True)
class NonceIssued:
    """The server wants *nonce* signed with the certificate's key."""

    nonce: bytes


@dataclass(frozen=True)
class CertificateRevoked:
    """The server revoked the certificate."""

    serial: str


@dataclass(frozen=True)
class ErrorReceived:
    """The server gave up on the conversation."""

    code: str
    message: str
    retry_after: int | None


Event = (
    RootRequested
    | CertificateRequested
    | Ready
    | RootSent
    | ChallengeIssued
    | StageChanged
    | CertificateIssued
    | RevocationRequested
    | ProofSent
    | NonceIssued
    | CertificateRevoked
    | ErrorReceived
)


# Reading fields. Every refusal names the field and the value it got.


def _show(value: object) -> str:
    """Quote a value briefly and printably: repr escapes surrogates, and
    ``default=repr`` copes with whatever our own callers may pass."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _wrong(name: str, value: object, wanted: str) -> ScbError:
    return ScbError(
        "bad_request", f"field {name!r} must be {wanted}, not {_show(value)}"
    )


def _field(message: dict, name: str) -> object:
    if name not in message:
        raise ScbError(
            "bad_request", f"the {message['type']!r} message lacks the field {name!r}"
        )
    return message[name]


def _text(
    message: dict, name: str, pattern: re.Pattern = _TEXT, wanted: str = "text"
) -> str:
    value = _field(message, name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _wrong(name, value, wanted)
    return value


def _choice(message: dict, name: str, choices: frozenset | tuple, wanted: str) -> str:
    value = _field(message, name)
    if not isinstance(value, str) or value not in choices:
        raise _wrong(name, value, wanted)
    return value


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(message: dict, name: str, low: int, high: int) -> int:
    value = _field(message, name)
    if not _is_integer(value) or not low <= value <= high:
        raise _wrong(name, value, f"an integer from {low} to {high}")
    return value


def _optional_integer(message: dict, name: str, low: int, high: int) -> int | None:
    # Optional fields are left out, never sent as null.
    return _integer(message, name, low, high) if name in message else None


def _bytes(message: dict, name: str, pattern: re.Pattern, wanted: str) -> bytes:
    value = _text(message, name, pattern, wanted)
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        # A length no base64 string can have, such as 4n + 1 characters.
        raise _wrong(name, value, wanted) from None


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _time(message: dict, name: str) -> str:
    value = _text(message, name)
    try:
        offset = datetime.fromisoformat(value).tzinfo
    except ValueError:
        offset = None
    if offset is None:
        raise _wrong(name, value, "an RFC 3339 time with an offset")
    return value


# Messages: one parser per type, for each direction.


def _check_version(message: dict) -> None:
    # The version comes first: a later version may change every other field.
    version = _field(message, "protocol")
    if not _is_integer(version):
        raise _wrong("protocol", version, "an integer")
    if version != PROTOCOL_VERSION:
        raise ScbError(
            "unsupported_protocol",
            f"protocol version {_show(version)} is not supported; "
            f"this certifier speaks version {PROTOCOL_VERSION}",
        )


def _certificate_requested(message: dict) -> CertificateRequested:
    _check_version(message)
    # The frame already bounds the CSR's length to MAX_FRAME.
    return CertificateRequested(
        csr_pem=_text(message, "csr"),
        validity_days=_optional_integer(
            message, "validity_days", 1, _MAX_VALIDITY_DAYS
        ),
    )


def _revocation_requested(message: dict) -> RevocationRequested:
    _check_version(message)
    return RevocationRequested(
        serial=_text(message, "serial", _SERIAL, "1 to 40 hex digits"),
        reason=_text(message, "reason", _REASON, "an RFC 5280 reason name"),
    )


def _challenge_issued(message: dict) -> ChallengeIssued:
    return ChallengeIssued(
        request_id=_text(
            message, "request_id", _REQUEST_ID, "1 to 64 visible ASCII characters"
        ),
        token=_text(message, "token", _TOKEN, "43 base64url characters"),
        expires_in=_integer(message, "expires_in", 1, _MAX_SECONDS),
    )


def _certificate_issued(message: dict) -> CertificateIssued:
    return CertificateIssued(
        serial=_text(message, "serial", _SERIAL, "1 to 40 hex digits"),
        not_after=_time(message, "not_after"),
        chain_pem=_text(message, "chain"),
    )


def _error_received(message: dict) -> ErrorReceived:
    return ErrorReceived(
        code=_choice(message, "code", ERROR_CODES, "a JASC/1 error code"),
        message=_text(message, "message"),
        retry_after=_optional_integer(message, "retry_after", 0, _MAX_SECONDS),
    )


_Parser = Callable[[dict], Event]

_CLIENT_MESSAGES: dict[str, _Parser] = {
    "root": lambda message: RootRequested(),
    "request": _certificate_requested,
    "ready": lambda message: Ready(_integer(message, "port", 1, 65535)),
    "revoke": _revocation_requested,
    "proof": lambda message: ProofSent(
        _bytes(message, "signature", _PROOF, "a base64url signature")
    ),
}
_SERVER_MESSAGES: dict[str, _Parser] = {
    "root": lambda message: RootSent(_text(message, "pem")),
    "challenge": _challenge_issued,
    "status": lambda message: StageChanged(
        _choice(message, "stage", STAGES, "one of " + ", ".join(STAGES))
    ),
    "certificate": _certificate_issued,
    "nonce": lambda message: NonceIssued(
        _bytes(message, "nonce", _TOKEN, "43 base64url characters")
    ),
    "revoked": lambda message: CertificateRevoked(
        _text(message, "serial", _SERIAL, "1 to 40 hex digits")
    ),
    "error": _error_received,
}


# The conversation as each side sees it: (state, message type) -> next state.
# A pair that is not listed is a move out of order.

_SERVER_RECEIVES = {
    ("await_first", "root"): "send_root",
    ("await_first", "request"): "send_challenge",
    ("await_ready", "ready"): "working",
    ("await_first", "revoke"): "send_nonce",
    ("await_proof", "proof"): "revoking",
}
_SERVER_SENDS = {
    ("send_root", "root"): "closed",
    ("send_challenge", "challenge"): "await_ready",
    ("working", "status"): "working",
    ("working", "certificate"): "closed",
    ("send_nonce", "nonce"): "await_proof",
    ("revoking", "revoked"): "closed",
    # "error" is allowed in every state, once; see ServerProtocol.send_error.
}
_CLIENT_SENDS = {
    ("send_first", "root"): "await_root",
    ("send_first", "request"): "await_challenge",
    ("send_ready", "ready"): "working",
    ("send_first", "revoke"): "await_nonce",
    ("send_proof", "proof"): "await_revoked",
}
_CLIENT_RECEIVES = {
    ("await_root", "root"): "closed",
    ("await_challenge", "challenge"): "send_ready",
    ("working", "status"): "working",
    ("working", "certificate"): "closed",
    ("await_nonce", "nonce"): "send_proof",
    ("await_revoked", "revoked"): "closed",
    # The server may give up at any turn, even before the client has spoken.
    ("send_first", "error"): "closed",
    ("await_root", "error"): "closed",
    ("await_challenge", "error"): "closed",
    ("send_ready", "error"): "closed",
    ("working", "error"): "closed",
    ("await_nonce", "error"): "closed",
    ("send_proof", "error"): "closed",
    ("await_revoked", "error"): "closed",
}


class _Side:
    """What both ends share: framing, looking moves up, and closing."""

    _peer: str
    _initial: str
    _receives: dict[tuple[str, str], str]
    _sends: dict[tuple[str, str], str]
    _theirs: dict[str, _Parser]  # what the peer may send us
    _ours: dict[str, _Parser]  # what we send, checked as the peer will

    def __init__(self) -> None:
        self.state = self._initial
        self._decoder = FrameDecoder()

    def receive_data(self, data: bytes) -> list[Event]:
        """Turn *data* into events; raise ScbError if the peer broke JASC/1."""
        if self.state == "closed":
            return []

        events = []
        try:
            for message in self._decoder.feed(data):
                events.append(self._receive(message))
                if self.state == "closed":
                    break  # anything after the last word is dropped
        except ScbError:
            self.state = "closed"
            raise
        return events

    def _receive(self, message: dict) -> Event:
        kind = message["type"]
        parse = self._theirs.get(kind)
        if parse is None:
            raise ScbError(
                "bad_request", f"no {self._peer} message has type {_show(kind)}"
            )
        next_state = self._receives.get((self.state, kind))
        if next_state is None:
            raise ScbError(
                "bad_request",
                f"a {kind!r} message is out of order in state {self.state!r}",
            )

        event = parse(message)
        self.state = next_state
        return event

    def _send(self, message: dict) -> bytes:
        next_state = self._sends.get((self.state, message["type"]))
        if next_state is None:
            raise RuntimeError(
                f"cannot send {message['type']!r} in state {self.state!r}"
            )
        return self._emit(message, next_state)

    def _emit(self, message: dict, next_state: str) -> bytes:
        # Never send what the peer would refuse: check it with the peer's rules.
        try:
            self._ours[message["type"]](message)
        except ScbError as error:
            raise ValueError(error.message) from None

        data = encode_frame(message)
        self.state = next_state
        return data


class ServerProtocol(_Side):
    """The certifier's end of one connection."""

    _peer = "client"
    _initial = "await_first"
    _receives = _SERVER_RECEIVES
    _sends = _SERVER_SENDS
    _theirs = _CLIENT_MESSAGES
    _ours = _SERVER_MESSAGES

    def __init__(self) -> None:
        super().__init__()
        # A peer's mistake closes us too, but leaves our answer to be sent.
        self._said_last_word = False

    def send_root(self, pem: str) -> bytes:
        return self._send({"type": "root", "pem": pem})

    def send_challenge(self, request_id: str, token: str, expires_in: int) -> bytes:
        return self._send(
            {
                "type": "challenge",
                "request_id": request_id,
                "token": token,
                "expires_in": expires_in,
            }
        )

    def send_status(self, stage: str) -> bytes:
        return self._send({"type": "status", "stage": stage})

    def send_certificate(self, serial: str, not_after: str, chain_pem: str) -> bytes:
        return self._send(
            {
                "type": "certificate",
                "serial": serial,
                "not_after": not_after,
                "chain": chain_pem,
            }
        )

    def send_nonce(self, nonce: bytes) -> bytes:
        return self._send({"type": "nonce", "nonce": _base64url(nonce)})

    def send_revoked(self, serial: str) -> bytes:
        return self._send({"type": "revoked", "serial": serial})

    def send_error(self, error: ScbError) -> bytes:
        """Give up, in any state, even after the client broke the protocol."""
        if self._said_last_word:
            raise RuntimeError("the server has already sent its last message")
        message = {"type": "error", "code": error.code, "message": error.message}
        if error.retry_after is not None:
            message["retry_after"] = error.retry_after
        return self._emit(message, "closed")

    def _emit(self, message: dict, next_state: str) -> bytes:
        data = super()._emit(message, next_state)
        self._said_last_word = next_state == "closed"
        return data


class ClientProtocol(_Side):
    """The host's end of one connection."""

    _peer = "server"
    _initial = "send_first"
    _receives = _CLIENT_RECEIVES
    _sends = _CLIENT_SENDS
    _theirs = _SERVER_MESSAGES
    _ours = _CLIENT_MESSAGES

    def send_root_request(self) -> bytes:
        return self._send({"type": "root"})

    def send_request(self, csr_pem: str, validity_days: int | None = None) -> bytes:
        message = {"type": "request", "protocol": PROTOCOL_VERSION, "csr": csr_pem}
        if validity_days is not None:
            message["validity_days"] = validity_days
        return self._send(message)

    def send_ready(self, port: int) -> bytes:
        return self._send({"type": "ready", "port": port})

    def send_revoke(self, serial: str, reason: str) -> bytes:
        return self._send(
            {
                "type": "revoke",
                "protocol": PROTOCOL_VERSION,
                "serial": serial,
                "reason": reason,
            }
        )

    def send_proof(self, signature: bytes) -> bytes:
        return self._send({"type": "proof", "signature": _base64url(signature)})
