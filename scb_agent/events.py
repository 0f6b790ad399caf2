"""The agent's event feed: every change, pushed to whoever subscribed.

Subscribers (admin socket clients, the console) get a bounded queue; one that
falls too far behind is dropped (it reads an `overflow` event and must
subscribe again) rather than let it grow the agent's memory.
"""

import asyncio
import logging
import time

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue] = set()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: str, **fields) -> None:
        message = {"event": event, "at": time.time(), **fields}
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("dropping a subscriber %s events behind", QUEUE_SIZE)
                self._subscribers.discard(queue)
                _replace_with_overflow(queue)


def _replace_with_overflow(queue: asyncio.Queue) -> None:
    """Leave the slow reader one message saying it lost the feed."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait({"event": "overflow", "at": time.time()})
