"""A JASC/1 client of the tests' own: plain ssl, struct framing, threads.

It shares no code with scb_agent's client or scb_core's protocol, so the
end-to-end tests check the agent against DESIGN's wire format rather than
against our own reading of it, and it can send what no polite client would:
empty frames, oversized headers, forged CSRs, wrong challenge answers.
"""

import base64
import hashlib
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

WIRE_TIMEOUT = 60.0
FINAL = ("certificate", "error", "root")


def frame(body: bytes, length: int | None = None) -> bytes:
    """A frame around `body`; `length` overrides the header to lie about it."""
    return struct.pack(">I", len(body) if length is None else length) + body


def key_authorization(token: str, public_key) -> bytes:
    """DESIGN step 4: TOKEN.THUMB, THUMB = b64url(SHA-256(SPKI DER))."""
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    thumb = base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=")
    return token.encode() + b"." + thumb


class Wire:
    """One TLS 1.3 connection to the agent, verified against `root_pem`."""

    def __init__(self, address: str, root_pem: Path):
        host, port = address.rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(root_pem))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        raw = socket.create_connection((host, int(port)), timeout=WIRE_TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname=host)

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def send(self, message: dict) -> None:
        self.send_raw(frame(json.dumps(message).encode()))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> dict | None:
        """The next message, or None once the agent has closed."""
        header = self._exactly(4)
        if header is None:
            return None
        (length,) = struct.unpack(">I", header)
        assert 1 <= length <= 65536, f"agent sent a frame of {length} bytes"
        body = self._exactly(length)
        assert body is not None, "agent closed mid-frame"
        message = json.loads(body.decode("utf-8"))
        assert isinstance(message, dict) and isinstance(message.get("type"), str)
        return message

    def final(self) -> tuple[dict, list[str]]:
        """Read past status messages to the last word; also the stages seen."""
        stages = []
        while True:
            message = self.receive()
            assert message is not None, f"agent closed after stages {stages}"
            if message["type"] in FINAL:
                return message, stages
            assert message["type"] == "status", message
            stages.append(message["stage"])

    def closed(self) -> bool:
        """True when the agent has hung up (after its last word)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def _exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            try:
                chunk = self.sock.recv(size - len(data))
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            data += chunk
        return data


class Responder:
    """The host's side of the challenge, on one port of several addresses.

    `answer(line)` gets the certifier's first line and returns the bytes to
    send back, or None to stay silent until the responder stops.
    """

    def __init__(self, addresses: list[str], answer: Callable[[bytes], bytes | None]):
        self.answer = answer
        self.lines: list[tuple[str, bytes]] = []
        self._stopped = threading.Event()
        self.asked = threading.Event()
        self._sockets = []
        self.port = 0
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            listener = socket.socket(family)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, self.port))
            listener.listen(8)
            listener.settimeout(0.05)
            self.port = listener.getsockname()[1]
            self._sockets.append(listener)
        self._threads = [
            threading.Thread(target=self._accept, args=(s,), daemon=True)
            for s in self._sockets
        ]

    def __enter__(self) -> "Responder":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(10)
        for listener in self._sockets:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._serve(conn, listener.getsockname()[0])

    def _serve(self, conn: socket.socket, address: str) -> None:
        conn.settimeout(WIRE_TIMEOUT)
        line = b""
        while not line.endswith(b"\n") and len(line) < 1024:
            chunk = conn.recv(1024)
            if not chunk:
                break
            line += chunk
        self.lines.append((address, line))
        self.asked.set()
        reply = self.answer(line)
        if reply is None:
            self._stopped.wait()
            return
        conn.sendall(reply)


def correct_answer(challenge: dict, public_key) -> Callable[[bytes], bytes | None]:
    """What an honest host answers: only its own request id, bound to its key."""
    expected_line = f"JASC/1 {challenge['request_id']}\n".encode()
    reply = key_authorization(challenge["token"], public_key) + b"\n"
    return lambda line: reply if line == expected_line else b""
