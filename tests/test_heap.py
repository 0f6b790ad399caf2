"""The agent trims its heap only after it did some work."""

import asyncio

from scb_agent import heap


async def test_heap_is_trimmed_after_activity_and_left_alone_when_idle(monkeypatch):
    trims: list[int] = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda: lambda pad: trims.append(pad))
    commits = [0]
    task = asyncio.create_task(heap.trim_heap_while_busy(lambda: commits[0], 0.01))
    try:
        await asyncio.sleep(0.1)
        assert trims == []  # idle: nothing committed, nothing to give back

        commits[0] += 1
        for _ in range(500):  # a generous bound, not a timing assertion
            if trims:
                break
            await asyncio.sleep(0.01)
        assert trims == [0]

        await asyncio.sleep(0.1)
        assert trims == [0]  # idle again
    finally:
        task.cancel()


async def test_without_malloc_trim_the_trimmer_just_returns(monkeypatch):
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    await asyncio.wait_for(heap.trim_heap_while_busy(lambda: 0, 0.01), 5)


def test_this_c_library_offers_malloc_trim_or_says_none():
    trim = heap._malloc_trim()
    assert trim is None or trim(0) in (0, 1)
