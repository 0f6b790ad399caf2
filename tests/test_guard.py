"""The agent's Guard over a real store, with the clock in the test's hand."""

import pytest

from scb_agent.events import EventBus
from scb_agent.guard import Guard
from scb_agent.store_writer import StoreWriter
from scb_core.config import Limits
from scb_core.errors import ScbError

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def open_guard(tmp_path, clock):
    writers = []

    async def open_one(**limits) -> Guard:
        writer = StoreWriter(tmp_path / "store.sqlite")
        writers.append(writer)
        guard = Guard(Limits(**limits), writer, EventBus(), clock=clock)
        await guard.load()
        return guard

    yield open_one
    for writer in writers:
        writer.close()


async def fail(guard: Guard, times: int, peer="10.0.0.7"):
    """Failed validations from `peer`, each for a name of its own."""
    for n in range(times):
        await guard.validation_failed(peer, [f"n{n}.{peer}.home.arpa"])


def ban_error(call) -> ScbError:
    with pytest.raises(ScbError) as info:
        call()
    assert info.value.code == "banned"
    return info.value


async def test_each_repeat_doubles_the_ban_up_to_the_cap(open_guard, clock):
    guard = await open_guard(max_ban_seconds=int(5 * HOUR))
    lengths = []
    for _ in range(5):
        await fail(guard, 5)
        [ban] = guard.active_bans()
        lengths.append(ban["expires_at"] - ban["created_at"])
        clock.now = ban["expires_at"] + 1
        guard.check_peer("10.0.0.7")  # over, and so the bucket is full again

    assert lengths == [HOUR, 2 * HOUR, 4 * HOUR, 5 * HOUR, 5 * HOUR]
    assert ban["strikes"] == 5


async def test_a_restarted_guard_keeps_bans_buckets_and_strikes(open_guard):
    first = await open_guard(requests_per_address_per_hour=2)
    first.admit_request("10.0.0.9")
    first.admit_request("10.0.0.9")
    await fail(first, 5)
    first.writer.close()

    again = await open_guard(requests_per_address_per_hour=2)

    assert ban_error(lambda: again.check_peer("10.0.0.7")).retry_after == 3600
    with pytest.raises(ScbError) as info:
        again.admit_request("10.0.0.9")
    assert info.value.code == "rate_limited"
    assert info.value.retry_after == 1800


async def test_an_unban_forgives_the_failures_too(open_guard):
    guard = await open_guard()
    await fail(guard, 5)

    [lifted] = await guard.unban("10.0.0.7", "alice")
    await fail(guard, 4)

    assert lifted["lifted_at"] is not None
    guard.check_peer("10.0.0.7")
    assert guard.active_bans() == []


async def test_a_name_pause_does_not_ban_the_addresses_that_asked(open_guard):
    guard = await open_guard(failures_per_address_per_hour=100)
    for n in range(5):
        await guard.validation_failed(f"10.0.0.{n}", ["flaky.home.arpa"])

    error = ban_error(lambda: guard.check_names(["ok.home.arpa", "flaky.home.arpa"]))
    assert "name flaky.home.arpa is paused" in error.message
    for n in range(5):
        guard.check_peer(f"10.0.0.{n}")


async def test_a_ban_on_a_network_covers_mapped_ipv6_peers(open_guard):
    guard = await open_guard()
    await guard.ban("10.1.0.0/16", "2h", "lab", "alice")

    error = ban_error(lambda: guard.check_peer("::ffff:10.1.2.3"))
    assert error.retry_after == 7200
    guard.check_peer("10.2.0.1")


async def test_bad_ban_values_and_durations_are_named(open_guard):
    guard = await open_guard()
    for value, duration, named in [
        ("10.0.0.0/40", None, "'10.0.0.0/40'"),
        ("a..b", None, "'a..b'"),
        ("10.0.0.1", "3 fortnights", "'3 fortnights'"),
    ]:
        with pytest.raises(ScbError) as info:
            await guard.ban(value, duration, "", "alice")
        assert info.value.code == "bad_request" and named in info.value.message
    with pytest.raises(ScbError, match="no active ban"):
        await guard.unban("99", "alice")


async def test_connection_slots_are_given_back(open_guard):
    guard = await open_guard(connections_per_address=1, connections_total=2)
    with guard.connection("10.0.0.1"):
        with pytest.raises(ScbError, match="connections_per_address = 1"):
            with guard.connection("10.0.0.1"):
                pass
        with guard.connection("10.0.0.2"):
            with pytest.raises(ScbError, match="connections_total = 2"):
                with guard.connection("10.0.0.3"):
                    pass
    with guard.connection("10.0.0.1"):
        assert guard.open_connections == 1
    assert guard.open_connections == 0 and guard.connections == {}
