"""How the console writes times, names, stages and events.

Times are UTC, like `scb-agent admin`, so what the console shows and what a
script logs can be compared at a glance.
"""

import datetime as dt

from rich.text import Text

STAGE_STYLES = {
    "received": "cyan",
    "resolving": "cyan",
    "connecting": "cyan",
    "awaiting_approval": "bold yellow",
    "signing": "cyan",
    "issued": "green",
    "failed": "red",
}

STATUS_STYLES = {"valid": "green", "revoked": "bold red", "expired": "dim"}


def when(timestamp: float | None, seconds: bool = False, short: bool = False) -> str:
    """UTC; `short` drops the year, for narrow tables."""
    if timestamp is None:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    day = "%m-%d" if short else "%Y-%m-%d"
    return moment.strftime(f"{day} %H:%M:%S" if seconds else f"{day} %H:%M")


def day(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%H:%M:%S")


def names_text(names: list[str] | str | None, width: int = 0) -> str:
    text = " ".join(names) if isinstance(names, list) else names or "-"
    return shorten(text, width) if width else text


def shorten(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


def stage_text(stage: str) -> Text:
    return Text(stage.replace("_", " "), style=STAGE_STYLES.get(stage, ""))


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def describe_event(event: dict) -> Text:
    """One line of the live feed: time, what happened, to what."""
    kind = event["event"]
    line = Text(clock(event["at"]) + "  ", style="dim")
    line.append(kind.replace("_", " ").ljust(18), style=_event_style(event))

    subject = names_text(event.get("names")) if event.get("names") else ""
    details = {
        "request_received": f"from {event.get('peer')}  id {event.get('request_id')}",
        "stage_changed": f"{subject} → {event.get('stage', '?').replace('_', ' ')}",
        "issued": f"{subject}  serial {event.get('serial', '?')}",
        "failed": f"{subject}  {event.get('code')}: {event.get('message')}",
        "approved": f"by {event.get('actor', '?')}",
        "denied": f"by {event.get('actor', '?')}: {event.get('reason') or '-'}",
        "revoked": f"serial {event.get('serial', '?')} ({event.get('reason', '?')})",
        "banned": f"{event.get('value', '?')}: {event.get('reason') or '-'}",
        "unbanned": f"{event.get('value') or event.get('id', '?')}",
    }
    line.append(details.get(kind, ""))
    return line


def _event_style(event: dict) -> str:
    kind = event["event"]
    if kind == "stage_changed":
        return STAGE_STYLES.get(event.get("stage", ""), "")
    return {
        "issued": "green",
        "failed": "red",
        "denied": "red",
        "revoked": "bold red",
        "banned": "magenta",
        "unbanned": "magenta",
        "approved": "green",
    }.get(kind, "cyan")
