"""A fake agent for the console's snapshots and screenshots.

It answers the admin commands from fixed, realistic data (no clock, no random
serials), so a screen renders the same on every run. Behaviour against a real
agent is tested with Pilot in test_console_live.py.
"""

import asyncio
import datetime as dt
from pathlib import Path

from scb_core.errors import ScbError

T0 = dt.datetime(2026, 12, 3, 22, 20, tzinfo=dt.UTC).timestamp()
DAY = 86400.0
LEAF_PEM = (Path(__file__).parent / "data" / "console_leaf.pem").read_text()
LEAF_SERIAL = "35B57AC16E7EEDC0F485D71C5751801EA085F11D"

SERVICES = [
    "grafana", "metrics", "nas", "printer", "wiki", "git", "vault", "ha",
    "camera-1", "camera-2", "mqtt", "jellyfin", "proxmox", "unifi", "backup",
]  # fmt: skip


def _serial(index: int) -> str:
    return format(0x1F3A_9C00_0000_0000_0000 + index * 0x9E37_79B9_7F4A_7C15, "X")


def _certificates() -> list[dict]:
    rows = [
        {
            "serial": LEAF_SERIAL,
            "names": ["grafana.lab.home.arpa", "metrics.lab.home.arpa"],
            "not_before": T0 - 300,
            "not_after": T0 + 90 * DAY,
            "issued_at": T0 - 120,
            "status": "valid",
            "reason": None,
            "revoked_at": None,
            "request_id": "8c1e2f0a9b7d4e31",
        }
    ]
    for index in range(1, 240):
        service = SERVICES[index % len(SERVICES)]
        issued = T0 - index * 0.37 * DAY
        revoked = index % 29 == 0
        expired = issued + 90 * DAY < T0
        rows.append(
            {
                "serial": _serial(index),
                "names": [f"{service}-{index:03d}.lab.home.arpa"],
                "not_before": issued - 300,
                "not_after": issued + 90 * DAY,
                "issued_at": issued,
                "status": "revoked" if revoked else "expired" if expired else "valid",
                "reason": "superseded" if revoked else None,
                "revoked_at": issued + 3 * DAY if revoked else None,
                "request_id": f"{index:016x}",
            }
        )
    return rows


def _request(request_id, peer, names, stage, created, **finish) -> dict:
    outcome = stage if stage in ("issued", "failed") else None
    return {
        "id": request_id,
        "peer": peer,
        "names": names,
        "stage": stage,
        "outcome": outcome,
        "error_code": finish.get("code"),
        "error_message": finish.get("message"),
        "serial": finish.get("serial"),
        "created_at": created,
        "updated_at": created + 2,
    }


REQUESTS = [
    _request("a41f09c2d3e85b17", "10.20.0.14", ["wiki.lab.home.arpa"],
             "awaiting_approval", T0 - 40),
    _request("5e7d21b0c9a4f388", "10.20.0.31", ["nas.home.arpa", "files.home.arpa"],
             "connecting", T0 - 5),
    _request("8c1e2f0a9b7d4e31", "10.20.0.9",
             ["grafana.lab.home.arpa", "metrics.lab.home.arpa"],
             "issued", T0 - 125, serial=LEAF_SERIAL),
    _request("0d93be7715aa6c42", "192.168.7.23", ["printer.office.home.arpa"],
             "failed", T0 - 600, code="connect_failed",
             message="192.168.7.23:844 refused the challenge connection"),
    _request("f2c6a8e4b1d07359", "10.20.0.77", ["vault.lab.home.arpa"],
             "failed", T0 - 1500, code="denied",
             message="an operator denied the request: not a lab host"),
    _request("71b4e9d2c05a3f86", "10.20.0.12", ["git.lab.home.arpa"],
             "issued", T0 - 3600, serial=_serial(3)),
    _request("9a0c3e5f7b2d4168", "100.64.3.9", ["ha.home.arpa"],
             "failed", T0 - 7200, code="dns_disagreement",
             message="ha.home.arpa: 10.0.0.5 and 10.0.0.6 answer differently"),
]  # fmt: skip

STAGES = {
    "a41f09c2d3e85b17": [
        ("received", T0 - 40),
        ("resolving", T0 - 40),
        ("connecting", T0 - 39),
        ("awaiting_approval", T0 - 39),
    ],
}

BANS = [
    {"id": 3, "kind": "address", "value": "192.168.7.23", "strikes": 2,
     "reason": "4 failed validations in 10 min", "actor": "agent",
     "created_at": T0 - 500, "expires_at": T0 + 7200, "lifted_at": None},
    {"id": 2, "kind": "network", "value": "10.99.0.0/16", "strikes": 1,
     "reason": "guest Wi-Fi has no business here", "actor": "alice",
     "created_at": T0 - 9 * DAY, "expires_at": None, "lifted_at": None},
    {"id": 1, "kind": "name", "value": "test.lab.home.arpa", "strikes": 3,
     "reason": "paused after repeated failures", "actor": "agent",
     "created_at": T0 - 2 * DAY, "expires_at": T0 + DAY, "lifted_at": None},
]  # fmt: skip

AUDIT = [
    (T0 - 125, "issued", "agent", "10.20.0.9", "grafana.lab.home.arpa "
     "metrics.lab.home.arpa", LEAF_SERIAL, None),
    (T0 - 600, "refused", "agent", "192.168.7.23", "printer.office.home.arpa",
     None, "connect_failed: 192.168.7.23:844 refused the challenge connection"),
    (T0 - 500, "banned", "agent", "192.168.7.23", None, None,
     "4 failed validations in 10 min"),
    (T0 - 1500, "denied", "alice", None, None, None, "not a lab host"),
    (T0 - 3600, "issued", "agent", "10.20.0.12", "git.lab.home.arpa",
     _serial(3), None),
    (T0 - 5000, "revoked", "bob", None, "camera-2-029.lab.home.arpa",
     _serial(29), "superseded"),
    (T0 - 7200, "refused", "agent", "100.64.3.9", "ha.home.arpa", None,
     "dns_disagreement: ha.home.arpa: 10.0.0.5 and 10.0.0.6 answer differently"),
    (T0 - 9 * DAY, "banned", "alice", None, None, None,
     "10.99.0.0/16: guest Wi-Fi has no business here"),
]  # fmt: skip

EVENTS = [
    {"event": "request_received", "at": T0 - 125, "request_id": "8c1e2f0a9b7d4e31",
     "peer": "10.20.0.9"},
    {"event": "stage_changed", "at": T0 - 124, "request_id": "8c1e2f0a9b7d4e31",
     "stage": "resolving", "names": ["grafana.lab.home.arpa",
                                     "metrics.lab.home.arpa"]},
    {"event": "stage_changed", "at": T0 - 123, "request_id": "8c1e2f0a9b7d4e31",
     "stage": "connecting", "names": ["grafana.lab.home.arpa",
                                      "metrics.lab.home.arpa"]},
    {"event": "issued", "at": T0 - 122, "request_id": "8c1e2f0a9b7d4e31",
     "serial": LEAF_SERIAL, "names": ["grafana.lab.home.arpa",
                                      "metrics.lab.home.arpa"]},
    {"event": "request_received", "at": T0 - 40, "request_id": "a41f09c2d3e85b17",
     "peer": "10.20.0.14"},
    {"event": "stage_changed", "at": T0 - 39, "request_id": "a41f09c2d3e85b17",
     "stage": "awaiting_approval", "names": ["wiki.lab.home.arpa"]},
    {"event": "failed", "at": T0 - 20, "request_id": "0d93be7715aa6c42",
     "names": ["printer.office.home.arpa"], "code": "connect_failed",
     "message": "192.168.7.23:844 refused the challenge connection"},
    {"event": "banned", "at": T0 - 19, "value": "192.168.7.23",
     "reason": "4 failed validations in 10 min"},
    {"event": "request_received", "at": T0 - 5, "request_id": "5e7d21b0c9a4f388",
     "peer": "10.20.0.31"},
]  # fmt: skip


async def settle(pilot) -> None:
    """Wait until every agent call a key started has been answered."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        busy = [w for w in app.workers if w.group != "feed" and w.is_running]
        if busy:  # an empty list would mean "every worker", the feed included
            await app.workers.wait_for_complete(busy)
    await pilot.pause()


class FakeAgentLink:
    """Stands in for AgentLink: same `where`, `call` and `feed`."""

    where = "/var/lib/scb/admin.sock"

    def __init__(self, events: list[dict] = EVENTS, up: bool = True):
        self.events = events
        self.up = up
        self.calls: list[tuple[str, dict]] = []
        self.certificates = _certificates()

    async def call(self, name: str, **args):
        self.calls.append((name, args))
        if not self.up:
            from scb_agent.admin_client import AgentUnavailable

            raise AgentUnavailable(f"no agent is listening on {self.where}")
        return getattr(self, f"_{name}")(**args)

    async def feed(self):
        if not self.up:
            from scb_agent.admin_client import AgentUnavailable

            raise AgentUnavailable(f"no agent is listening on {self.where}")
        yield {"event": "connected"}
        for event in self.events:
            yield event
        await asyncio.Event().wait()  # a quiet agent: no more changes

    def _status(self):
        return {
            "started_at": T0 - 3 * DAY - 5123,
            "ca": "CN=Example Lab CA",
            "issuer": "CN=Example Lab issuing CA",
            "listen": "0.0.0.0:8443",
            "allowed_domains": ["home.arpa", "lab.home.arpa"],
            "approval": "manual",
            "awaiting_approval": ["a41f09c2d3e85b17"],
            "certificates": len(self.certificates),
            "valid": sum(r["status"] == "valid" for r in self.certificates),
            "revoked": sum(r["status"] == "revoked" for r in self.certificates),
            "pending": 2,
            "bans": len(BANS),
        }

    def _requests(self, limit=100, pending=False):
        return [r for r in REQUESTS if r["outcome"] is None or not pending][:limit]

    def _request(self, request_id):
        for row in REQUESTS:
            if row["id"] == request_id:
                stages = STAGES.get(request_id, [("received", row["created_at"])])
                if row["stage"] != "received" and request_id not in STAGES:
                    stages = [*stages, (row["stage"], row["updated_at"])]
                return {**row, "stages": [{"stage": s, "at": a} for s, a in stages]}
        raise ScbError("bad_request", f"no request with id {request_id!r}")

    def _certificates(self, search="", status="", offset=0, limit=100):
        rows = [
            r
            for r in self.certificates
            if (not search or search.lower() in " ".join(r["names"]) + r["serial"])
            and (not status or r["status"] == status)
        ]
        return {"total": len(rows), "offset": offset, "rows": rows[offset:][:limit]}

    def _certificate(self, serial):
        for row in self.certificates:
            if row["serial"] == serial:
                return {**row, "pem": LEAF_PEM}
        raise ScbError("bad_request", f"no certificate with serial {serial}")

    def _bans(self):
        return BANS

    def _audit(self, limit=100, search=""):
        columns = ("at", "event", "actor", "peer", "names", "serial", "detail")
        rows = [
            {"id": len(AUDIT) - i, **dict(zip(columns, entry, strict=True))}
            for i, entry in enumerate(AUDIT)
        ]
        wanted = search.lower()
        return [
            r for r in rows if wanted in " ".join(str(v) for v in r.values()).lower()
        ][:limit]
