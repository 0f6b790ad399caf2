"""`scb-agent serve`: the certifier, until SIGTERM.

On SIGTERM or SIGINT it stops accepting, finishes the requests in flight,
commits the store and exits 0.
"""

import asyncio
import asyncio.sslproto
import logging
import resource
import signal
import time

from scb_core.config import parse_host_port

from .admin import AdminServer
from .agent import open_agent
from .certifier import Certifier
from .crl_publication import Publication
from .heap import trim_heap_while_busy

logger = logging.getLogger(__name__)

RESTART_REASON = "the agent stopped before the request finished"


def run_serve(args, paths) -> int:
    agent = open_agent(paths)
    raise_open_file_limit()
    try:
        run_loop(serve(agent))
    finally:
        agent.writer.close()
    return 0


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Every connection is an open file: take what the hard limit allows.

    The usual soft limit of 1024 would refuse connections long before the
    configured caps (limits.connections_total) do.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the open file limit to %s: %s", target, exc)
    logger.info("open file limit %s", soft)
    return soft


# asyncio gives every TLS connection a 256 KiB read buffer from the moment
# it is accepted, before any handshake: 1,000 idle peers would hold 256 MB.
# One full TLS record (16 KiB + overhead) per read is all JASC/1 needs.
TLS_READ_BUFFER = 17 * 1024


def run_loop(main):
    """asyncio.run, on uvloop when the `fast` extra installed it (less CPU)."""
    try:
        import uvloop
    except ImportError:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
        return asyncio.run(main)
    return uvloop.run(main)


def event_loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return f"uvloop {uvloop.__version__}"


async def serve(agent, ready: asyncio.Event | None = None) -> None:
    await _recover(agent)
    await agent.guard.load()
    publication = Publication(agent)
    await publication.start()
    host, port = parse_host_port(agent.config.listen)
    certifier = Certifier(agent)
    await certifier.start(host, port)
    admin = AdminServer(agent, agent.paths.admin_socket)
    await admin.start()
    logger.info("serving JASC/1 on %s:%s", host, certifier.port)
    logger.info("admin socket %s", agent.paths.admin_socket)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    trimmer = asyncio.create_task(trim_heap_while_busy(lambda: agent.writer.commits))

    await stop.wait()
    trimmer.cancel()
    logger.info("stopping: finishing %d requests in flight", len(certifier.tasks))
    await certifier.drain()
    await admin.close()
    await publication.stop()
    logger.info("stopped")


async def _recover(agent) -> None:
    """A killed agent may leave requests mid-stage: close them as failed."""
    at = time.time()
    failed = await agent.writer.call(
        lambda store: store.fail_unfinished_requests(RESTART_REASON, at)
    )
    if failed:
        logger.warning("marked %d unfinished requests failed", len(failed))
