"""Tools for hostile tests: a raw JASC/1 client, challenge peers, process stats.

Nothing here uses scb_agent's client or scb_core's protocol, so the abuse,
load and crash tests can send what a polite client never would and check
the agent against DESIGN's wire format itself.
"""

import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from tests import jasc_wire
from tests.helpers import make_csr
from tests.jasc_wire import frame, key_authorization

TIMEOUT = 30.0  # a failsafe for a hung test, never an assertion about speed


def message(**fields) -> bytes:
    return frame(json.dumps(fields).encode())


def client_context(root_pem: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(root_pem))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


class Wire(jasc_wire.Wire):
    """jasc_wire's connection, from a chosen loopback source, sending raw bytes
    (a hostile test lies about frames) and noting every token it is given."""

    def __init__(self, port: int, root_pem: Path, source: str = "127.0.0.1"):
        raw = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0)
        )
        self.sock = client_context(root_pem).wrap_socket(
            raw, server_hostname="127.0.0.1"
        )
        self.tokens: list[str] = []

    def send(self, data: bytes) -> None:
        self.send_raw(data)

    def receive(self) -> dict | None:
        received = super().receive()
        if received is not None and received["type"] == "challenge":
            self.tokens.append(received["token"])
        return received

    def last_word(self) -> dict:
        """Read past status messages to the final message; then expect EOF."""
        while True:
            received = self.receive()
            assert received is not None, "the agent closed without a last word"
            if received["type"] != "status":
                assert self.receive() is None, "the agent spoke after its last word"
                return received


class Peer:
    """A challenge listener on address:port whose behaviour a test picks.

    `behave(conn, line)` gets the accepted socket and the certifier's first
    line (None if it sent none) and does whatever the test wants with it.
    """

    def __init__(self, address: str, behave: Callable, read_line: bool = True):
        self.behave = behave
        self.read_line = read_line
        self.lines: list[bytes] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((address, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "Peer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join(TIMEOUT)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            line = None
            if self.read_line:
                line = _read_line(conn)
                self.lines.append(line)
            try:
                self.behave(conn, line)
            except OSError:
                pass  # the certifier gave up on us, as it should


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 512:
        try:
            chunk = conn.recv(1)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def answering(answer: bytes) -> Callable:
    """A peer that answers every certifier line with `answer`."""

    def behave(conn, line):
        conn.sendall(answer + b"\n")

    return behave


def issue(
    port: int,
    root_pem: Path,
    name: str,
    peer_address: str = "127.0.0.2",
    source: str = "127.0.0.1",
) -> tuple[dict, list[str]]:
    """A good request answered by a correct peer: the last word and tokens.

    A refusal before the challenge (banned, rate_limited) is the last word.
    """
    csr, key = make_csr([name])
    with Wire(port, root_pem, source) as wire:
        wire.send(message(type="request", protocol=1, csr=csr))
        challenge = wire.receive()
        assert challenge is not None, "the agent closed without a word"
        if challenge["type"] == "error":
            return challenge, []
        assert challenge["type"] == "challenge", challenge
        answer = key_authorization(challenge["token"], key.public_key())
        with Peer(peer_address, answering(answer)) as peer:
            wire.send(message(type="ready", port=peer.port))
            return wire.last_word(), wire.tokens


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
