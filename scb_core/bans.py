"""Bans: what a ban can name, how long it lasts, and whom it matches.

A ban names an address (10.0.0.7), a network (10.0.0.0/24) or a DNS name
(printer.home.arpa; a ban on a name is also called a pause). The agent bans
on its own when failures reach their limit, for `base` seconds doubled on
each repeat up to `cap`; operators ban for a time or until lifted. Rows have
the store's shape: id, kind, value, strikes, reason, actor, created_at,
expires_at (None: until lifted), lifted_at.
"""

import functools
import ipaddress
import re

from .errors import ScbError
from .policy import normalize_name

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
FOREVER_WORDS = ("", "forever", "ever", "never")


# Parsing an address costs more than every check that follows, and the same
# peers come back again and again: remember the recent ones.
@functools.lru_cache(maxsize=16384)
def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The peer as the address it really is (IPv4-mapped IPv6 unwrapped)."""
    address = ipaddress.ip_address(peer.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=16384)
def peer_key(peer: str) -> str:
    """The peer's address as bans and rate buckets spell it."""
    return str(peer_address(peer))


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
    """The active bans, matched against peers and names without the store.

    Indexed so a check costs the same with ten bans or ten thousand:
    addresses and names by value, networks parsed once. Expired bans are
    dropped when a check or a listing comes across them.
    """

    def __init__(self, bans: list[dict] = ()):
        self.bans: dict[int, dict] = {}
        self._by_value: dict[str, set[int]] = {}
        self._networks: dict[int, tuple[int, int, int]] = {}  # version, net, mask
        for ban in bans:
            self.add(ban)

    def add(self, ban: dict) -> None:
        ban = dict(ban)
        self.bans[ban["id"]] = ban
        self._by_value.setdefault(ban["value"], set()).add(ban["id"])
        if ban["kind"] == "network":
            net = ipaddress.ip_network(ban["value"])
            self._networks[ban["id"]] = (
                net.version,
                int(net.network_address),
                int(net.netmask),
            )

    def lift(self, ban_id: int) -> dict | None:
        ban = self.bans.pop(ban_id, None)
        if ban is not None:
            self._by_value[ban["value"]].discard(ban_id)
            if not self._by_value[ban["value"]]:
                del self._by_value[ban["value"]]
            self._networks.pop(ban_id, None)
        return ban

    def active(self, now: float) -> list[dict]:
        return sorted(self._live(list(self.bans), now), key=lambda ban: ban["id"])

    def with_value(self, value: str, now: float) -> list[dict]:
        return self._live(self._by_value.get(value, ()), now)

    def for_peer(self, peer: str, now: float) -> dict | None:
        """The longest-lasting address or network ban covering `peer`."""
        if not self.bans:
            return None
        address = peer_address(peer)
        ids = list(self._by_value.get(peer_key(peer), ()))
        # Networks are tried one by one: operators list a few, not thousands.
        version, number = address.version, int(address)
        ids += [
            ban_id
            for ban_id, (net_version, net, mask) in self._networks.items()
            if net_version == version and number & mask == net
        ]
        return _longest(self._live(ids, now))

    def for_names(self, names: list[str], now: float) -> dict | None:
        """The longest-lasting pause of any of `names`."""
        if not self.bans:
            return None
        ids = [
            ban_id
            for name in names
            for ban_id in self._by_value.get(name, ())
            if self.bans[ban_id]["kind"] == "name"
        ]
        return _longest(self._live(ids, now))

    def _live(self, ids, now: float) -> list[dict]:
        """The bans among `ids` still in force; the others are dropped."""
        live = []
        for ban_id in list(ids):
            ban = self.bans[ban_id]
            if is_active(ban, now):
                live.append(ban)
            else:
                self.lift(ban_id)
        return live


def _longest(bans: list[dict]) -> dict | None:
    if not bans:
        return None
    return max(bans, key=_end)


def _end(ban: dict) -> float:
    return float("inf") if ban["expires_at"] is None else ban["expires_at"]
