"""The CRL and the root in the public dir, kept fresh while the agent runs.

    crl.der    the CRL, at the URL leaves name as their distribution point
    crl.pem    the same CRL, for `openssl verify -CRLfile` and nginx ssl_crl
    root.pem   the trust anchor, for hosts that fetch it over plain HTTP

A fresh CRL is signed when the agent starts, after every revocation and
every `crl.interval_hours`, valid for `crl.next_update_days`. One lock
orders the publications, so the CRL on disk is always the one with the
highest number, listing every revocation committed before it was signed.
Any web server can serve the dir; with `http_listen` the agent does itself.
"""

import asyncio
import datetime as dt
import logging
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.authority_files import pem_of
from scb_core.ca import BACKDATE, Authority, now
from scb_core.crl import Revocation, sign_crl
from scb_core.errors import ConfigError
from scb_core.files import write_atomic

from .public_http import PublicHttpServer

logger = logging.getLogger(__name__)

CRL_COUNTER = "crl_number"
RETRY_SECONDS = 300  # after a failed scheduled publication


async def publish_crl(agent) -> int:
    """Sign a CRL over every revocation and write it; returns its number."""
    async with agent.crl_lock:
        number, revocations = await agent.writer.call(_crl_contents)
        # Backdated like certificates, so a host whose clock runs a little
        # behind does not find the CRL "not yet valid".
        this_update = now() - BACKDATE
        next_update = now() + dt.timedelta(days=agent.config.crl.next_update_days)
        # Signing 100,000 entries takes about half a second: not on the loop.
        await asyncio.to_thread(
            _sign_and_write,
            agent.paths.public_dir,
            agent.authority,
            revocations,
            number,
            (this_update, next_update),
        )
    return number


def _crl_contents(store) -> tuple[int, list[Revocation]]:
    # The number is committed before the CRL is signed: never used twice.
    number = store.next_counter(CRL_COUNTER)
    return number, [Revocation(*row) for row in store.revocations()]


def _sign_and_write(
    public_dir: Path,
    authority: Authority,
    revocations: list[Revocation],
    number: int,
    validity: tuple[dt.datetime, dt.datetime],
) -> None:
    crl = sign_crl(authority, revocations, number, *validity)
    public_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(public_dir / "crl.der", crl.public_bytes(Encoding.DER))
    write_atomic(public_dir / "crl.pem", crl.public_bytes(Encoding.PEM))
    write_atomic(public_dir / "root.pem", pem_of(authority.root))


class Publication:
    """While the agent serves: CRLs on a schedule and, if set, the HTTP server."""

    def __init__(self, agent):
        self.agent = agent
        self.http: PublicHttpServer | None = None
        self._schedule: asyncio.Task | None = None

    async def start(self) -> None:
        settings = self.agent.config.crl
        if settings.interval_hours >= settings.next_update_days * 24:
            logger.warning(
                "crl.interval_hours %g is not below crl.next_update_days %d: "
                "clients will see the CRL expire before the next one is signed",
                settings.interval_hours,
                settings.next_update_days,
            )
        try:
            number = await publish_crl(self.agent)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the CRL to {self.agent.paths.public_dir}: {exc}"
            ) from exc
        logger.info("published CRL %d in %s", number, self.agent.paths.public_dir)

        self._schedule = asyncio.create_task(self._publish_on_schedule())
        if self.agent.config.http_listen:
            self.http = PublicHttpServer.start(
                self.agent.paths.public_dir, self.agent.config.http_listen
            )

    async def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
        if self.http is not None:
            await asyncio.to_thread(self.http.stop)

    async def _publish_on_schedule(self) -> None:
        interval = self.agent.config.crl.interval_hours * 3600
        delay = interval
        while True:
            await asyncio.sleep(delay)
            try:
                number = await publish_crl(self.agent)
            except Exception:
                delay = min(interval, RETRY_SECONDS)
                logger.exception("scheduled CRL failed; retrying in %d s", delay)
                continue
            logger.info("scheduled CRL %d published", number)
            delay = interval
