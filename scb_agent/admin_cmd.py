"""`scb-agent admin …`: the console's actions as plain commands.

Each subcommand is one admin-socket call; `--json` prints the result as one
JSON value for scripts, otherwise a table fit for a terminal.
"""

import asyncio
import datetime as dt
import json
import os
import pwd

from scb_core.errors import ScbError
from scb_core.paths import Paths

from .admin_client import AdminClient, AgentUnavailable

# subcommand -> (admin command, function turning args into its arguments,
#                function printing its result as a table)
SUBCOMMANDS = {}


def subcommand(name: str, call: str, arguments, table):
    SUBCOMMANDS[name] = (call, arguments, table)


def operator_name() -> str:
    """Who is acting, for the audit log: the sudo user or the login name."""
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def run_admin(args, paths: Paths) -> int:
    call, arguments, table = SUBCOMMANDS[args.admin_command]
    try:
        result = asyncio.run(_call(paths, call, arguments(args)))
    except AgentUnavailable as exc:
        raise ScbError("internal", str(exc)) from exc

    if getattr(args, "json", False):
        rows = (
            result["rows"] if isinstance(result, dict) and "rows" in result else result
        )
        print(json.dumps(rows, indent=2))
    else:
        table(result)
    return 0


async def _call(paths: Paths, name: str, arguments: dict):
    async with AdminClient(paths.admin_socket) as client:
        return await client.call(name, **arguments)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Columns as (heading, key); cells are cut to keep rows on one line."""
    if not rows:
        print("(none)")
        return
    cells = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [
        min(40, max(len(heading), *(len(c[i]) for c in cells)))
        for i, (heading, _) in enumerate(columns)
    ]
    print("  ".join(h.ljust(w) for (h, _), w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, float):
        return when(value)
    return str(value)


def _print_status(result: dict) -> None:
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key.ljust(width)}  {_cell(value)}")


def _print_requests(rows: list[dict]) -> None:
    print_table(
        rows,
        [
            ("ID", "id"),
            ("RECEIVED", "created_at"),
            ("PEER", "peer"),
            ("NAMES", "names"),
            ("STAGE", "stage"),
            ("ERROR", "error_code"),
        ],
    )


def _print_certificates(result: dict) -> None:
    print_table(
        result["rows"],
        [
            ("SERIAL", "serial"),
            ("NAMES", "names"),
            ("NOT AFTER", "not_after"),
            ("STATUS", "status"),
            ("REASON", "reason"),
        ],
    )
    shown = len(result["rows"])
    if shown < result["total"]:
        total = f"{result['total']}" + ("" if result.get("exact", True) else "+")
        print(f"({shown} of {total}; use --search or --offset)")


def _print_audit(rows: list[dict]) -> None:
    print_table(
        rows,
        [
            ("TIME", "at"),
            ("EVENT", "event"),
            ("ACTOR", "actor"),
            ("PEER", "peer"),
            ("NAMES", "names"),
            ("SERIAL", "serial"),
            ("DETAIL", "detail"),
        ],
    )


def _print_bans(rows: list[dict]) -> None:
    shown = [
        {**row, "expires_at": row["expires_at"] or "until lifted"} for row in rows
    ]
    print_table(
        shown,
        [
            ("ID", "id"),
            ("KIND", "kind"),
            ("VALUE", "value"),
            ("SINCE", "created_at"),
            ("UNTIL", "expires_at"),
            ("STRIKES", "strikes"),
            ("BY", "actor"),
            ("REASON", "reason"),
        ],
    )


def _print_ban(row: dict) -> None:
    end = row["expires_at"]
    until = f"until {when(end)} UTC" if end else "until lifted"
    print(f"ban {row['id']}: {row['kind']} {row['value']} {until}: {row['reason']}")


def _print_unbanned(rows: list[dict]) -> None:
    for row in rows:
        print(f"lifted ban {row['id']} on {row['kind']} {row['value']}")


def _print_decision(result: dict) -> None:
    print(f"request {result['request_id']} {result['decision']}")


def _print_revoked(result: dict) -> None:
    print(
        f"revoked serial {result['serial']} ({result['reason']}) for "
        f"{' '.join(result['names'])}; CRL {result['crl_number']} published"
    )


def _print_certificate(result: dict) -> None:
    pem = result.pop("pem")
    _print_status(result)
    print(pem, end="")


subcommand("status", "status", lambda a: {}, _print_status)
subcommand(
    "requests",
    "requests",
    lambda a: {"limit": a.limit, "pending": a.pending},
    _print_requests,
)
subcommand(
    "certificates",
    "certificates",
    lambda a: {
        "search": a.search,
        "status": a.status,
        "offset": a.offset,
        "limit": a.limit,
    },
    _print_certificates,
)
subcommand(
    "certificate", "certificate", lambda a: {"serial": a.serial}, _print_certificate
)
subcommand(
    "approve",
    "approve",
    lambda a: {"request_id": a.request_id, "actor": operator_name()},
    _print_decision,
)
subcommand(
    "deny",
    "deny",
    lambda a: {
        "request_id": a.request_id,
        "reason": a.reason,
        "actor": operator_name(),
    },
    _print_decision,
)
subcommand(
    "revoke",
    "revoke",
    lambda a: {"serial": a.serial, "reason": a.reason, "actor": operator_name()},
    _print_revoked,
)
subcommand(
    "audit", "audit", lambda a: {"limit": a.limit, "search": a.search}, _print_audit
)
subcommand("bans", "bans", lambda a: {}, _print_bans)
subcommand(
    "ban",
    "ban",
    lambda a: {
        "value": a.value,
        "duration": a.duration,
        "reason": a.reason,
        "actor": operator_name(),
    },
    _print_ban,
)
subcommand(
    "unban",
    "unban",
    lambda a: {"id_or_value": a.id_or_value, "actor": operator_name()},
    _print_unbanned,
)
