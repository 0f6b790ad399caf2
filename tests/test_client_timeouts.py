"""The host's client against a peer that completes TLS and then says nothing.

Such a peer (a hung agent, or some other TLS service on that port) must end
in the protocol's own `timeout` error, which the CLI prints as one line,
never in a bare TimeoutError and a traceback.
"""

import asyncio
import ssl

import pytest

from scb_agent import client
from scb_core.authority_files import pem_of
from scb_core.ca import create_root, issue_server_certificate
from scb_core.errors import ScbError
from scb_core.keys import generate_key, private_key_pem
from tests.helpers import make_csr


@pytest.fixture
async def silent_tls_server(tmp_path):
    """127.0.0.1:PORT: TLS 1.3 with a cert for 127.0.0.1, then silence."""
    root_key, server_key = generate_key("ec-p256"), generate_key("ec-p256")
    root = create_root("Silent test CA", root_key)
    cert = issue_server_certificate(root, root_key, ["127.0.0.1"], server_key)
    (tmp_path / "server.pem").write_bytes(pem_of(cert))
    (tmp_path / "server.key").write_bytes(private_key_pem(server_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")

    async def say_nothing(reader, writer):
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[:2], pem_of(root).decode()
    finally:
        server.close()


async def test_bootstrap_against_a_silent_peer_times_out_with_its_code(
    silent_tls_server, monkeypatch
):
    address, _ = silent_tls_server
    monkeypatch.setattr(client, "CONNECT_TIMEOUT", 0.5)

    with pytest.raises(ScbError) as refused:
        await client.fetch_root(address)

    assert refused.value.code == "timeout"
    assert "0.5 s" in refused.value.message


async def test_request_against_a_silent_peer_times_out_with_its_code(
    silent_tls_server, monkeypatch
):
    address, root_pem = silent_tls_server
    monkeypatch.setattr(client, "CONNECT_TIMEOUT", 0.5)
    csr, key = make_csr(["svc.home.arpa"])

    with pytest.raises(ScbError) as refused:
        await client.obtain_certificate(address, root_pem, csr, "thumb", 1)

    assert refused.value.code == "timeout"


async def test_peer_that_never_finishes_the_handshake_fails_to_connect(monkeypatch):
    async def accept_and_wait(reader, writer):
        await reader.read()
        writer.close()

    # Plain TCP: the ClientHello goes unanswered.
    server = await asyncio.start_server(accept_and_wait, "127.0.0.1", 0)
    monkeypatch.setattr(client, "CONNECT_TIMEOUT", 0.5)
    try:
        with pytest.raises(ScbError) as refused:
            await client.fetch_root(server.sockets[0].getsockname()[:2])
    finally:
        server.close()

    assert refused.value.code == "connect_failed"
    assert "within 0.5 s" in refused.value.message
