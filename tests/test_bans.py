"""Bans (scb_core.bans): what they name, how long they last, whom they match."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scb_core.bans import (
    BanList,
    automatic_ban_seconds,
    classify,
    parse_duration,
    retry_after,
)

HOUR = 3600.0
WEEK = 7 * 24 * HOUR
NOW = 1_000_000.0


def ban(ban_id, kind, value, expires_at=NOW + HOUR, lifted_at=None):
    return {
        "id": ban_id,
        "kind": kind,
        "value": value,
        "strikes": 1,
        "reason": "test",
        "actor": "agent",
        "created_at": NOW - 10,
        "expires_at": expires_at,
        "lifted_at": lifted_at,
    }


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("10.0.0.7", "address", "10.0.0.7"),
        (" ::ffff:10.0.0.7 ", "address", "10.0.0.7"),
        ("fd00::1", "address", "fd00::1"),
        ("10.0.0.9/24", "network", "10.0.0.0/24"),
        ("fd00::/8", "network", "fd00::/8"),
        ("Printer.Home.Arpa.", "name", "printer.home.arpa"),
    ],
)
def test_classify_tells_addresses_networks_and_names_apart(typed, kind, value):
    assert classify(typed) == (kind, value)


@pytest.mark.parametrize("typed", ["10.0.0.0/33", "not a name!", "*.home.arpa", ""])
def test_classify_names_what_it_cannot_use(typed):
    with pytest.raises(ValueError) as info:
        classify(typed)
    assert repr(typed.strip()) in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 7 * 86400), ("1w", WEEK),
     ("1h30m", 5400), ("45", 45), (" 2H ", 7200)],
)  # fmt: skip
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [None, "", "forever", "Forever"])
def test_no_duration_is_forever(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize("text", ["2x", "h", "-1h", "0s", "1.5h", "2h and more"])
def test_a_bad_duration_is_named(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_automatic_bans_start_at_an_hour_and_double_up_to_a_week():
    lengths = [automatic_ban_seconds(n, HOUR, WEEK) for n in range(1, 11)]

    assert lengths[:4] == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]
    assert lengths[-1] == WEEK
    assert max(lengths) == WEEK


@given(st.integers(1, 10_000))
def test_no_automatic_ban_is_shorter_than_the_last_or_longer_than_the_cap(strikes):
    this = automatic_ban_seconds(strikes, HOUR, WEEK)
    assert HOUR <= this <= WEEK
    if strikes > 1:
        assert this >= automatic_ban_seconds(strikes - 1, HOUR, WEEK)


def test_a_network_ban_covers_its_addresses_and_mapped_ones():
    bans = BanList([ban(1, "network", "10.9.0.0/16")])

    assert bans.for_peer("10.9.3.4", NOW)["id"] == 1
    assert bans.for_peer("::ffff:10.9.3.4", NOW)["id"] == 1
    assert bans.for_peer("10.8.3.4", NOW) is None


def test_the_longest_ban_is_the_one_reported():
    bans = BanList(
        [
            ban(1, "address", "10.0.0.7", expires_at=NOW + 60),
            ban(2, "network", "10.0.0.0/8", expires_at=None),
            ban(3, "address", "10.0.0.7", expires_at=NOW + 600),
        ]
    )
    assert bans.for_peer("10.0.0.7", NOW)["id"] == 2
    assert retry_after(bans.for_peer("10.0.0.7", NOW), NOW) is None


def test_expired_and_lifted_bans_match_nothing():
    bans = BanList(
        [
            ban(1, "address", "10.0.0.7", expires_at=NOW - 1),
            ban(2, "name", "a.home.arpa", lifted_at=NOW - 5),
        ]
    )
    assert bans.for_peer("10.0.0.7", NOW) is None
    assert bans.for_names(["a.home.arpa"], NOW) is None
    assert bans.active(NOW) == []


def test_a_name_pause_matches_any_name_of_a_request():
    bans = BanList([ban(4, "name", "b.home.arpa", expires_at=NOW + 90)])

    found = bans.for_names(["a.home.arpa", "b.home.arpa"], NOW)

    assert found["id"] == 4
    assert retry_after(found, NOW) == 90
    assert bans.for_peer("10.0.0.7", NOW) is None


def test_lifting_removes_the_ban():
    bans = BanList([ban(1, "address", "10.0.0.7")])

    assert bans.lift(1)["value"] == "10.0.0.7"
    assert bans.for_peer("10.0.0.7", NOW) is None
    assert bans.lift(1) is None



ADDRESSES = st.builds(lambda n: f"10.0.{n // 8}.{n % 8}", st.integers(0, 31))
BANS = st.lists(
    st.tuples(
        st.sampled_from(["address", "network"]),
        ADDRESSES,
        st.sampled_from([None, NOW - 5, NOW + 5, NOW + 50]),
    ),
    max_size=12,
)


def _network(address: str) -> str:
    return str(ipaddress.ip_network(f"{address}/30", strict=False))


def _end(row: dict) -> float:
    return float("inf") if row["expires_at"] is None else row["expires_at"]


@given(bans=BANS, peer=ADDRESSES, lifted=st.sets(st.integers(0, 12), max_size=4))
def test_the_index_finds_what_a_scan_of_every_ban_finds(bans, peer, lifted):
    rows = [
        ban(i, kind, value if kind == "address" else _network(value), end)
        for i, (kind, value, end) in enumerate(bans)
    ]
    index = BanList(rows)
    for ban_id in lifted:
        index.lift(ban_id)

    address = ipaddress.ip_address(peer)
    covering = [
        row
        for row in rows
        if row["id"] not in lifted
        and _end(row) > NOW
        and address in ipaddress.ip_network(row["value"])
    ]
    found = index.for_peer(peer, NOW)
    if not covering:
        assert found is None
    else:
        assert _end(found) == max(map(_end, covering))
