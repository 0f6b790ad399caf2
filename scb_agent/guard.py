"""The certifier's gate: connection caps, bans and rate limits, in memory.

The agent is the store's only writer, so what this module holds in memory is
the truth, and every check is a dictionary lookup, with no query and no
fsync. Each change is posted to the store writer and rides along with the
next commit (group commit); `load()` reads it all back at start, so a
restart forgets nothing. Bans are rare and the next connection must see
them, so creating or lifting one waits for its commit.

Order, cheapest first: connection caps and bans on the address right after
the TLS handshake, before a byte of the request is read; requests per
address once it is a certificate request; name pauses and certificates per
name set once the CSR names are known, before any DNS.
"""

import datetime as dt
import logging
import threading
import time
from contextlib import contextmanager

from scb_core.bans import (
    BanList,
    automatic_ban_seconds,
    classify,
    parse_duration,
    peer_key,
    retry_after,
)
from scb_core.errors import ScbError
from scb_core.limits import HOUR, WEEK, Limited, Limiter, Rate, whole_seconds

logger = logging.getLogger(__name__)

CONNECTION_RETRY = 1  # seconds: a connection slot frees up as soon as one ends


class Guard:
    def __init__(self, limits, writer, events, clock=time.time):
        self.limits = limits
        self.writer = writer
        self.events = events
        self.clock = clock
        self.requests = _rate(limits, "requests", "requests_per_address_per_hour")
        self.address_failures = _rate(
            limits, "failures", "failures_per_address_per_hour"
        )
        self.name_failures = _rate(
            limits, "name-failures", "failures_per_name_per_hour"
        )
        self.name_sets = _rate(
            limits, "certificates", "certificates_per_name_set_per_week", WEEK
        )
        self.limiter = Limiter(clock, on_change=self._persist_tat)
        self._unsaved: dict[str, float] = {}  # TATs moved since the last write
        self._unsaved_lock = threading.Lock()  # shared with the writer thread
        self.banlist = BanList()
        self.connections: dict[str, int] = {}
        self.open_connections = 0

    async def load(self) -> None:
        """The rate state and active bans, as the store last had them."""
        now = self.clock()
        tats, bans = await self.writer.call(
            lambda store: (store.live_rate_state(now), store.active_bans(now))
        )
        self.limiter.tats = tats
        self.banlist = BanList(bans)
        logger.info("loaded %d rate keys and %d active bans", len(tats), len(bans))

    # Right after the TLS handshake --------------------------------------

    @contextmanager
    def connection(self, peer: str):
        """Hold one of the connection slots for `peer`, or rate_limited."""
        peer = peer_key(peer)
        held = self.connections.get(peer, 0)
        if held >= self.limits.connections_per_address:
            self._refused_early("limited", peer, self._too_many_from(peer))
        if self.open_connections >= self.limits.connections_total:
            self._refused_early("limited", peer, _too_many_overall(self.limits))

        self.connections[peer] = held + 1
        self.open_connections += 1
        try:
            yield
        finally:
            self.open_connections -= 1
            self.connections[peer] -= 1
            if not self.connections[peer]:
                del self.connections[peer]

    def check_peer(self, peer: str) -> None:
        """banned, before anything of the peer's is read."""
        now = self.clock()
        ban = self.banlist.for_peer(peer, now)
        if ban is not None:
            self._refused_early("refused", peer, _banned(f"{peer} is banned", ban, now))

    # Once the request and its names are known ------------------------------

    def admit_request(self, peer: str) -> None:
        """Count a certificate request from `peer`, or rate_limited."""
        subject = peer_key(peer)
        try:
            self.limiter.take(self.requests, subject)
        except Limited as over:
            raise _rate_limited(f"too many requests from {subject}", over) from None

    def check_names(self, names: list[str]) -> None:
        """Name pauses, then the certificates-per-name-set limit."""
        now = self.clock()
        ban = self.banlist.for_names(names, now)
        if ban is not None:
            raise _banned(f"name {ban['value']} is paused", ban, now)
        try:
            self.limiter.check(self.name_sets, _name_set(names))
        except Limited as over:
            shown = " ".join(names)
            raise _rate_limited(f"too many certificates for {shown}", over) from None

    def issued(self, names: list[str]) -> None:
        self.limiter.count(self.name_sets, _name_set(names))

    async def validation_failed(self, peer: str, names: list[str]) -> None:
        """Count the failure; ban the address or pause names that reached it."""
        address = peer_key(peer)
        if self.limiter.count(self.address_failures, address):
            await self._ban_automatically("address", address, self.address_failures)
        for name in names:
            if self.limiter.count(self.name_failures, name):
                await self._ban_automatically("name", name, self.name_failures)

    # Operators --------------------------------------------------------------

    def active_bans(self) -> list[dict]:
        return self.banlist.active(self.clock())

    async def ban(
        self, value: str, duration: str | None, reason: str, actor: str
    ) -> dict:
        try:
            kind, value = classify(value)
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise ScbError("bad_request", str(exc)) from exc
        return await self._add_ban(kind, value, reason, actor, seconds, strikes=1)

    async def unban(self, id_or_value: str, actor: str) -> list[dict]:
        bans = self._bans_matching(str(id_or_value).strip())
        now = self.clock()

        def lift(store):
            for ban in bans:
                store.lift_ban(ban["id"], now)
                store.audit(
                    "unbanned",
                    actor,
                    now,
                    **_subject(ban),
                    detail=f"{ban['kind']} {ban['value']} (ban {ban['id']})",
                )

        await self.writer.call(lift)
        for ban in bans:
            self.banlist.lift(ban["id"])
            self._forgive(ban)
            self.events.publish(
                "unbanned",
                id=ban["id"],
                kind=ban["kind"],
                value=ban["value"],
                actor=actor,
            )
            logger.info("ban %s on %s lifted by %s", ban["id"], ban["value"], actor)
        return [{**ban, "lifted_at": now} for ban in bans]

    # Inner workings -----------------------------------------------------------

    def _bans_matching(self, text: str) -> list[dict]:
        now = self.clock()
        if text.isdigit():
            found = [ban for ban in self.banlist.active(now) if ban["id"] == int(text)]
        else:
            try:
                _, value = classify(text)
            except ValueError as exc:
                raise ScbError("bad_request", str(exc)) from exc
            found = self.banlist.with_value(value, now)
        if not found:
            raise ScbError("bad_request", f"no active ban with id or value {text!r}")
        return found

    def _forgive(self, ban: dict) -> None:
        """A lifted ban starts its subject's failure count afresh."""
        if ban["kind"] == "address":
            self.limiter.forget(self.address_failures, ban["value"])
        elif ban["kind"] == "name":
            self.limiter.forget(self.name_failures, ban["value"])

    async def _ban_automatically(self, kind: str, value: str, rate: Rate) -> None:
        if self.banlist.with_value(value, self.clock()):
            return  # already banned: its failures cannot add a second ban
        reason = f"{rate.count} failed validations within {_hours(rate.period)}"
        await self._add_ban(kind, value, reason, "agent", None, strikes=None)

    async def _add_ban(
        self,
        kind: str,
        value: str,
        reason: str,
        actor: str,
        seconds: float | None,
        strikes: int | None,
    ) -> dict:
        """strikes None: an automatic ban, as long as the value's history says."""
        now = self.clock()
        limits = self.limits

        def insert(store):
            count, duration = strikes, seconds
            if count is None:
                count = store.strikes(value) + 1
                duration = automatic_ban_seconds(
                    count, limits.ban_seconds, limits.max_ban_seconds
                )
            expires_at = None if duration is None else now + duration
            ban_id = store.add_ban(kind, value, reason, actor, now, expires_at, count)
            store.audit(
                "banned",
                actor,
                now,
                **_subject({"kind": kind, "value": value}),
                detail=f"{kind} {value} {_until(expires_at)}: {reason}",
            )
            return store.get_ban(ban_id)

        ban = await self.writer.call(insert)
        self.banlist.add(ban)
        self.events.publish(
            "banned",
            id=ban["id"],
            kind=kind,
            value=value,
            reason=reason,
            actor=actor,
            expires_at=ban["expires_at"],
            strikes=ban["strikes"],
        )
        logger.warning(
            "banned %s %s %s by %s: %s",
            kind,
            value,
            _until(ban["expires_at"]),
            actor,
            reason,
        )
        return ban

    def _refused_early(self, event: str, peer: str, error: ScbError):
        """Audit a refusal that comes before any request row, then raise it."""
        at = self.clock()
        detail = f"{error.code}: {error.message}"
        self.writer.post(
            lambda store: store.audit(event, "agent", at, peer=peer, detail=detail)
        )
        self.events.publish(
            "failed", peer=peer, names=[], code=error.code, message=error.message
        )
        raise error

    def _too_many_from(self, peer: str) -> ScbError:
        count = self.limits.connections_per_address
        return ScbError(
            "rate_limited",
            f"too many connections from {peer}: limits.connections_per_address"
            f" = {count} at once",
            retry_after=CONNECTION_RETRY,
        )

    def _persist_tat(self, key: str, tat: float) -> None:
        """Note the TAT; one writer job carries every TAT moved meanwhile."""
        with self._unsaved_lock:
            first = not self._unsaved
            self._unsaved[key] = tat
        if first:
            self.writer.post(self._write_tats)

    def _write_tats(self, store) -> None:
        """In the writer thread: the latest TAT of each key moved since."""
        with self._unsaved_lock:
            unsaved, self._unsaved = self._unsaved, {}
        for key, tat in unsaved.items():
            store.set_rate_tat(key, tat)


def _too_many_overall(limits) -> ScbError:
    return ScbError(
        "rate_limited",
        "too many connections overall: limits.connections_total"
        f" = {limits.connections_total} at once",
        retry_after=CONNECTION_RETRY,
    )


def _rate_limited(what: str, over: Limited) -> ScbError:
    wait = whole_seconds(over.retry_after)
    return ScbError(
        "rate_limited",
        f"{what}: {over.rate.describe()}; retry after {wait} s",
        retry_after=wait,
    )


def _banned(what: str, ban: dict, now: float) -> ScbError:
    wait = retry_after(ban, now)
    return ScbError(
        "banned",
        f"{what} {_until(ban['expires_at'])} ({ban['reason']})",
        retry_after=None if wait is None else whole_seconds(wait),
    )


def _until(expires_at: float | None) -> str:
    if expires_at is None:
        return "until an operator lifts it"
    moment = dt.datetime.fromtimestamp(expires_at, dt.UTC)
    return f"until {moment:%Y-%m-%d %H:%M:%S} UTC"


def _rate(limits, kind: str, setting: str, period: float = HOUR) -> Rate:
    """The rate agent.toml's [limits] `setting` sets, named in its refusals."""
    return Rate(kind, getattr(limits, setting), period, f"limits.{setting}")


def _hours(seconds: float) -> str:
    return "an hour" if seconds == HOUR else f"{seconds / HOUR:g} hours"


def _name_set(names: list[str]) -> str:
    return " ".join(sorted(set(names)))


def _subject(ban: dict) -> dict:
    """Audit columns for a ban: an address in peer, a name in names."""
    if ban["kind"] == "name":
        return {"names": [ban["value"]]}
    return {"peer": ban["value"]}
