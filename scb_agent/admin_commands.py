"""Admin commands over the store and the requests in flight.

Reads and writes go through the store writer, so they see exactly what has
been committed and never race the certifier.
"""

import time

from scb_core.errors import ScbError
from scb_core.store import SEARCH_COUNT_LIMIT, parse_serial

# Modules that hold more commands: importing them registers those too.
from . import admin_bans, admin_revoke  # noqa: F401
from .admin import command

PAGE_LIMIT = 500


def _limit(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ScbError("bad_request", f"limit {value!r} must be a positive integer")
    return min(value, PAGE_LIMIT)


@command("status")
async def status(agent, **_):
    at = time.time()
    counts = await agent.writer.call(lambda store: store.counts(at))
    return {
        "started_at": agent.started_at,
        "ca": agent.authority.root.subject.rfc4514_string(),
        "issuer": agent.authority.issuer.subject.rfc4514_string(),
        "listen": agent.config.listen,
        "allowed_domains": agent.config.allowed_domains,
        "approval": agent.config.approval,
        "awaiting_approval": sorted(agent.approvals),
        "connections": agent.guard.open_connections,
        **counts,
    }


@command("requests")
async def requests(agent, limit: int = 100, pending: bool = False):
    limit = _limit(limit)
    return await agent.writer.call(lambda store: store.list_requests(limit, pending))


@command("request")
async def request(agent, request_id: str):
    found = await agent.writer.call(lambda store: store.get_request(request_id))
    if found is None:
        raise ScbError("bad_request", f"no request with id {request_id!r}")
    return found


@command("certificates")
async def certificates(
    agent, search: str = "", status: str = "", offset: int = 0, limit: int = 100
):
    if status not in ("", "valid", "revoked", "expired"):
        raise ScbError("bad_request", f"status {status!r}: use valid, revoked, expired")
    if not isinstance(offset, int) or offset < 0:
        raise ScbError("bad_request", f"offset {offset!r} must be 0 or more")
    limit = _limit(limit)
    rows, total = await agent.writer.call(
        lambda store: store.list_certificates(str(search), status, offset, limit)
    )
    # A search stops counting past SEARCH_COUNT_LIMIT: then total is a floor.
    exact = total <= SEARCH_COUNT_LIMIT or not str(search).strip()
    return {
        "total": total if exact else SEARCH_COUNT_LIMIT,
        "exact": exact,
        "offset": offset,
        "rows": [r.as_dict() for r in rows],
    }


@command("certificate")
async def certificate(agent, serial: str):
    try:
        normalized = parse_serial(serial)
    except ValueError as exc:
        raise ScbError("bad_request", str(exc)) from exc
    row = await agent.writer.call(lambda store: store.get_certificate(normalized))
    if row is None:
        raise ScbError("bad_request", f"no certificate with serial {serial}")
    return row.as_dict(with_pem=True)


@command("approve")
async def approve(agent, request_id: str, actor: str = "operator"):
    return await _decide(agent, request_id, True, "", actor)


@command("deny")
async def deny(agent, request_id: str, reason: str = "", actor: str = "operator"):
    return await _decide(agent, request_id, False, reason or "no reason given", actor)


async def _decide(agent, request_id: str, approved: bool, reason: str, actor: str):
    decision = agent.approvals.get(request_id)
    if decision is None or decision.done():
        raise ScbError(
            "bad_request", f"request {request_id!r} is not awaiting approval"
        )

    event = "approved" if approved else "denied"
    at = time.time()

    def record(store):
        row = store.get_request(request_id) or {}
        store.audit(
            event,
            actor,
            at,
            peer=row.get("peer"),
            names=row.get("names"),
            request_id=request_id,
            detail=reason or None,
        )

    await agent.writer.call(record)
    decision.set_result((approved, reason))
    agent.events.publish(event, request_id=request_id, actor=actor, reason=reason)
    return {"request_id": request_id, "decision": event}


@command("audit")
async def audit(agent, limit: int = 100, search: str = ""):
    limit = _limit(limit)
    return await agent.writer.call(lambda store: store.list_audit(limit, str(search)))
