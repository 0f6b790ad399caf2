"""Hand freed heap pages back to the operating system while the agent runs.

Every issuance allocates and frees memory in C (OpenSSL, SQLite,
cryptography) from two threads. glibc keeps freed pages inside its heaps, so
the agent's RSS crept up by about 1 MB per 1,000 issuances while the memory
actually in use stayed flat (mallinfo2 and tracemalloc agreed; see
benchmarks/memory.py). `malloc_trim(0)` returns those pages. It takes well
under a millisecond, and runs only when the store committed something since
the last time, so an idle agent does nothing at all. Where the C library has
no malloc_trim (musl, macOS) there is nothing to do.
"""

import asyncio
import ctypes
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

TRIM_INTERVAL = 10.0  # seconds


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


async def trim_heap_while_busy(
    activity: Callable[[], int], interval: float = TRIM_INTERVAL
) -> None:
    """Every `interval`, trim the heap if `activity()` moved since last time."""
    trim = _malloc_trim()
    if trim is None:
        logger.debug("no malloc_trim in this C library: heap trimming off")
        return

    last = activity()
    while True:
        await asyncio.sleep(interval)
        now = activity()
        if now != last:
            trim(0)
            last = now
