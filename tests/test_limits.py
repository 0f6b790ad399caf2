"""GCRA rate limits (scb_core.limits) against an injected clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scb_core.limits import HOUR, Limited, Limiter, Rate, decide, whole_seconds

REQUESTS = Rate("requests", 30, HOUR, "limits.requests_per_address_per_hour")
FAILURES = Rate("failures", 5, HOUR, "limits.failures_per_address_per_hour")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_its_count_at_once_then_refuses():
    limiter = Limiter(Clock())
    for _ in range(30):
        limiter.take(REQUESTS, "10.0.0.7")

    with pytest.raises(Limited) as info:
        limiter.take(REQUESTS, "10.0.0.7")
    assert info.value.retry_after == pytest.approx(HOUR / 30)
    assert info.value.rate is REQUESTS


def test_one_token_comes_back_every_interval():
    clock = Clock()
    limiter = Limiter(clock)
    for _ in range(30):
        limiter.take(REQUESTS, "a")

    clock.now += HOUR / 30
    limiter.take(REQUESTS, "a")
    with pytest.raises(Limited):
        limiter.take(REQUESTS, "a")


def test_keys_do_not_share_a_bucket():
    limiter = Limiter(Clock())
    for _ in range(30):
        limiter.take(REQUESTS, "a")

    limiter.take(REQUESTS, "b")
    limiter.take(FAILURES, "a")


def test_a_refused_event_is_not_counted():
    clock = Clock()
    limiter = Limiter(clock)
    for _ in range(30):
        limiter.take(REQUESTS, "a")
    for _ in range(10):
        with pytest.raises(Limited):
            limiter.take(REQUESTS, "a")

    clock.now += HOUR / 30
    limiter.take(REQUESTS, "a")


def test_check_counts_nothing():
    limiter = Limiter(Clock())
    for _ in range(100):
        limiter.check(FAILURES, "a")
    for _ in range(5):
        limiter.take(FAILURES, "a")
    with pytest.raises(Limited):
        limiter.check(FAILURES, "a")


def test_count_says_empty_exactly_at_the_limit():
    limiter = Limiter(Clock())

    emptied = [limiter.count(FAILURES, "10.0.0.7") for _ in range(6)]

    assert emptied == [False, False, False, False, True, True]


def test_a_bucket_left_alone_for_a_period_is_full_again():
    clock = Clock()
    limiter = Limiter(clock)
    for _ in range(5):
        limiter.count(FAILURES, "a")

    clock.now += HOUR
    assert [limiter.count(FAILURES, "a") for _ in range(5)] == [False] * 4 + [True]


def test_a_new_limiter_from_the_saved_tats_remembers_everything():
    clock = Clock()
    saved: dict[str, float] = {}
    limiter = Limiter(clock, on_change=saved.__setitem__)
    for _ in range(30):
        limiter.take(REQUESTS, "a")

    restarted = Limiter(clock, saved)
    with pytest.raises(Limited):
        restarted.take(REQUESTS, "a")


def test_forget_fills_the_bucket_and_reports_it():
    saved: dict[str, float] = {}
    limiter = Limiter(Clock(), on_change=saved.__setitem__)
    for _ in range(5):
        limiter.count(FAILURES, "a")

    limiter.forget(FAILURES, "a")

    assert limiter.count(FAILURES, "a") is False
    assert saved["failures:a"] > 0


def test_describe_names_the_setting_and_the_period():
    assert REQUESTS.describe() == "limits.requests_per_address_per_hour = 30 per hour"
    week = Rate("certificates", 10, 7 * 24 * HOUR, "limits.x")
    assert week.describe() == "limits.x = 10 per week"


def test_a_rate_needs_a_positive_count():
    with pytest.raises(ValueError, match="requests"):
        Rate("requests", 0, HOUR, "limits.requests_per_address_per_hour")


def test_retry_after_on_the_wire_is_whole_seconds_and_never_zero():
    assert whole_seconds(0.0001) == 1
    assert whole_seconds(120.0) == 120
    assert whole_seconds(120.2) == 121


@given(
    count=st.integers(1, 50),
    period=st.floats(1, 10_000),
    gaps=st.lists(st.floats(0, 500), min_size=1, max_size=200),
)
def test_no_window_holds_more_than_the_burst_and_what_refilled(count, period, gaps):
    """GCRA's promise: within any span L, at most count + L / interval events."""
    rate = Rate("r", count, period, "limits.r")
    clock = Clock(0.0)
    limiter = Limiter(clock)
    allowed = []
    for gap in gaps:
        clock.now += gap
        try:
            limiter.take(rate, "k")
        except Limited:
            continue
        allowed.append(clock.now)

    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            span = allowed[j] - start
            assert j - i + 1 <= count + span / rate.interval + 1e-6


@given(
    count=st.integers(1, 50),
    period=st.floats(1, 10_000),
    tat_ahead=st.floats(0, 20_000),
)
def test_waiting_retry_after_is_exactly_enough(count, period, tat_ahead):
    rate = Rate("r", count, period, "limits.r")
    now = 5_000.0
    first = decide(rate, now + tat_ahead, now)
    if first.allowed:
        return

    later = now + first.retry_after
    assert decide(rate, now + tat_ahead, later + 1e-6).allowed
    assert not decide(rate, now + tat_ahead, later - 1e-3 * rate.interval).allowed
