"""The baseline server: the least an asyncio TLS 1.3 service can do.

Run as `python tls_echo.py CERT KEY`; prints its port on 127.0.0.1. Each
connection gets the TLS handshake, then one length-prefixed frame is read and
echoed back, then the connection closes: the transport work of a JASC/1
conversation with none of the CA's. It takes the certificate, event loop
and TLS settings the agent uses, so the ratio measures the agent, not them.
"""

import asyncio
import socket
import sys

from scb_agent.agent import server_tls_context
from scb_agent.serve import run_loop


async def echo(reader, writer) -> None:
    writer.get_extra_info("socket").setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    try:
        header = await reader.readexactly(4)
        body = await reader.readexactly(int.from_bytes(header, "big"))
        writer.write(header + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


async def serve(cert: str, key: str) -> None:
    context = server_tls_context(cert, key)
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    run_loop(serve(sys.argv[1], sys.argv[2]))
