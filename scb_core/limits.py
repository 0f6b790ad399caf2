"""Rate limits as GCRA token buckets: pure arithmetic, the clock passed in.

Theory of operation. A limit of COUNT events per PERIOD emits one token every
T = PERIOD / COUNT seconds and lets COUNT of them pile up. GCRA keeps a single
number per key instead of a count and a refill time: the "theoretical arrival
time" (TAT), the moment the bucket would be full again. An event at `now` is
allowed while

    max(TAT, now) + T - PERIOD <= now

and, when it is taken, moves TAT to max(TAT, now) + T. A TAT in the past is a
full bucket, so a key nobody used lately needs no row at all. One float per
key is what the store's `rate_state` table holds, so a restart forgets
nothing, and a check is a dictionary lookup and three additions.

`Limiter` keeps the TATs in memory (the agent is the store's only writer, so
its memory is the truth) and reports each change for the caller to persist.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

HOUR = 3600.0
WEEK = 7 * 24 * HOUR


@dataclass(frozen=True)
class Rate:
    """COUNT events per PERIOD seconds for one kind of key.

    `setting` is the agent.toml key that sets COUNT: refusals name it, so an
    operator knows which knob to turn.
    """

    kind: str
    count: int
    period: float
    setting: str

    def __post_init__(self):
        if self.count < 1 or self.period <= 0:
            raise ValueError(f"rate {self.kind}: count and period must be positive")

    @property
    def interval(self) -> float:
        return self.period / self.count

    def key(self, subject: str) -> str:
        return f"{self.kind}:{subject}"

    def describe(self) -> str:
        return f"{self.setting} = {self.count} per {_span(self.period)}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tat: float  # the TAT after this event if it is taken
    retry_after: float  # seconds until it would be allowed (0 when allowed)


def decide(rate: Rate, tat: float | None, now: float) -> Decision:
    """Would one more event at `now` fit under `rate`, given the key's TAT?"""
    start = now if tat is None else max(tat, now)
    new_tat = start + rate.interval
    allowed_at = new_tat - rate.period
    if allowed_at > now:
        return Decision(False, start, allowed_at - now)
    return Decision(True, new_tat, 0.0)


def whole_seconds(seconds: float) -> int:
    """retry_after on the wire: whole seconds, never 0 for a refusal."""
    return max(1, math.ceil(seconds - 1e-9))


class Limited(Exception):
    """An event over a limit: which one, for whom, and how long to wait."""

    def __init__(self, rate: Rate, subject: str, retry_after: float):
        super().__init__(f"{rate.kind} {subject}")
        self.rate = rate
        self.subject = subject
        self.retry_after = retry_after


class Limiter:
    """The TATs of every key, and the verbs the certifier needs on them.

    `on_change(key, tat)` is called for every TAT that moves, so the caller
    can write it to the store in its own time.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        tats: dict[str, float] | None = None,
        on_change: Callable[[str, float], None] = lambda key, tat: None,
    ):
        self.clock = clock
        self.tats: dict[str, float] = dict(tats or {})
        self.on_change = on_change

    def take(self, rate: Rate, subject: str) -> None:
        """Count one event, or raise Limited and count nothing."""
        key = rate.key(subject)
        decision = decide(rate, self.tats.get(key), self.clock())
        if not decision.allowed:
            raise Limited(rate, subject, decision.retry_after)
        self._set(key, decision.tat)

    def check(self, rate: Rate, subject: str) -> None:
        """Raise Limited if one more event would not fit; count nothing."""
        decision = decide(rate, self.tats.get(rate.key(subject)), self.clock())
        if not decision.allowed:
            raise Limited(rate, subject, decision.retry_after)

    def count(self, rate: Rate, subject: str) -> bool:
        """Count one event even over the limit; True if the bucket is now empty.

        For failures: they have happened whatever the limit says, and an
        empty bucket is the signal to ban.
        """
        key = rate.key(subject)
        now = self.clock()
        tat = max(self.tats.get(key, now), now) + rate.interval
        self._set(key, tat)
        return not decide(rate, tat, now).allowed

    def forget(self, rate: Rate, subject: str) -> None:
        """A full bucket again (an operator forgave the subject)."""
        key = rate.key(subject)
        if self.tats.pop(key, None) is not None:
            self.on_change(key, 0.0)

    def _set(self, key: str, tat: float) -> None:
        self.tats[key] = tat
        self.on_change(key, tat)


def _span(seconds: float) -> str:
    for unit, size in (("week", WEEK), ("day", 86400.0), ("hour", HOUR)):
        if seconds == size:
            return unit
        if seconds % size == 0:
            return f"{seconds / size:g} {unit}s"
    return f"{seconds:g} s"
