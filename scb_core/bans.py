"""Bans: what a ban can name, how long it lasts, and whom it matches.

A ban names an address (10.0.0.7), a network (10.0.0.0/24) or a DNS name
(printer.home.arpa; a ban on a name is also called a pause). The agent bans
on its own when failures reach their limit, for `base` seconds doubled on
each repeat up to `cap`; operators ban for a time or until lifted. Rows have
the store's shape: id, kind, value, strikes, reason, actor, created_at,
expires_at (None: until lifted), lifted_at.
"""

import ipaddress
import re

from .errors import ScbError
from .policy import normalize_name

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
FOREVER_WORDS = ("", "forever", "ever", "never")


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The peer as the address it really is (IPv4-mapped IPv6 unwrapped)."""
    address = ipaddress.ip_address(peer.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def classify(value: str) -> tuple[str, str]:
    """(kind, normalized value) of what an operator typed, or a ValueError."""
    text = str(value).strip()
    if "/" in text:
        try:
            return "network", str(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a CIDR network") from exc
    try:
        return "address", str(peer_address(text))
    except ValueError:
        pass
    try:
        return "name", normalize_name(text)
    except ScbError as exc:
        raise ValueError(
            f"{text!r} is not an address, a CIDR network or a DNS name"
        ) from exc


def parse_duration(text: str | None) -> float | None:
    """Seconds in "90s", "30m", "2h", "7d", "1w", "1h30m"; None means forever."""
    cleaned = (text or "").strip().lower()
    if cleaned in FOREVER_WORDS:
        return None
    if cleaned.isdigit():
        cleaned += "s"

    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(
            f"duration {text!r}: use a number and a unit, e.g. 30m, 2h, 7d, "
            "or forever"
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than 0 s")
    return float(seconds)


def automatic_ban_seconds(strikes: int, base: float, cap: float) -> float:
    """The n-th automatic ban of one value lasts base * 2**(n-1), at most cap."""
    if strikes < 1:
        raise ValueError(f"strikes {strikes} must be 1 or more")
    return min(cap, base * 2.0 ** min(strikes - 1, 64))


def is_active(ban: dict, now: float) -> bool:
    if ban.get("lifted_at") is not None:
        return False
    return ban["expires_at"] is None or ban["expires_at"] > now


def retry_after(ban: dict, now: float) -> float | None:
    """Seconds until the ban ends; None for one that lasts until lifted."""
    if ban["expires_at"] is None:
        return None
    return max(0.0, ban["expires_at"] - now)


class BanList:
    """The active bans, matched against peers and names without the store."""

    def __init__(self, bans: list[dict] = ()):
        self.bans: dict[int, dict] = {ban["id"]: dict(ban) for ban in bans}

    def add(self, ban: dict) -> None:
        self.bans[ban["id"]] = dict(ban)

    def lift(self, ban_id: int) -> dict | None:
        return self.bans.pop(ban_id, None)

    def active(self, now: float) -> list[dict]:
        self._drop_expired(now)
        return sorted(self.bans.values(), key=lambda ban: ban["id"])

    def with_value(self, value: str, now: float) -> list[dict]:
        return [ban for ban in self.active(now) if ban["value"] == value]

    def for_peer(self, peer: str, now: float) -> dict | None:
        """The longest-lasting address or network ban covering `peer`."""
        if not self.bans:
            return None
        address = peer_address(peer)
        found = [
            ban
            for ban in self.active(now)
            if (ban["kind"] == "address" and ban["value"] == str(address))
            or (
                ban["kind"] == "network"
                and address in ipaddress.ip_network(ban["value"])
            )
        ]
        return _longest(found)

    def for_names(self, names: list[str], now: float) -> dict | None:
        """The longest-lasting pause of any of `names`."""
        if not self.bans:
            return None
        wanted = set(names)
        found = [
            ban
            for ban in self.active(now)
            if ban["kind"] == "name" and ban["value"] in wanted
        ]
        return _longest(found)

    def _drop_expired(self, now: float) -> None:
        for ban_id in [i for i, ban in self.bans.items() if not is_active(ban, now)]:
            del self.bans[ban_id]


def _longest(bans: list[dict]) -> dict | None:
    if not bans:
        return None
    return max(bans, key=_end)


def _end(ban: dict) -> float:
    return float("inf") if ban["expires_at"] is None else ban["expires_at"]
