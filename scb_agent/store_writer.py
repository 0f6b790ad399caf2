"""Group commit: the agent's one thread that talks to the store.

Coroutines hand it work as functions of the Store. The thread takes every job
waiting, runs them in one transaction (each inside a savepoint, so one failure
does not undo its neighbours), commits once, and only then resolves each job's
future. Issuances that finish together so share one fsync, and no certificate
is sent before its row is on disk.

Work nobody waits on (a request received, a stage reached) may wait up to
POST_DELAY for company: it rides along with the next awaited job's commit
rather than paying an fsync of its own, so one issuance costs one commit.
It waits on the event loop's side, not in the thread's queue: an issuance
posts half a dozen such jobs, and waking the thread for each would cost a
GIL hand-over between the two threads every time.
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scb_core.store import Store

logger = logging.getLogger(__name__)

MAX_BATCH = 512
POST_DELAY = 0.02  # seconds
_STOP = object()


class StoreWriter:
    def __init__(self, path: Path):
        self.store = Store(path)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._posted: list = []  # post()ed on the loop, not yet handed over
        self._flush_timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._thread.start()
        self.commits = 0

    def call(self, job: Callable[[Store], Any]) -> asyncio.Future:
        """Run `job` in the next transaction; the future resolves after COMMIT."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._hand_over([(job, loop, future)])
        return future

    def post(self, job: Callable[[Store], Any]) -> None:
        """Like call, for work nobody waits on (it still commits in order)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the agent's loop: no one to batch with
            self._jobs.put([(job, None, None)])
            return
        self._posted.append((job, None, None))
        if self._flush_timer is None or self._timer_loop is not loop:
            self._flush_timer = loop.call_later(POST_DELAY, self._hand_over, [])
            self._timer_loop = loop

    def _hand_over(self, jobs: list) -> None:
        """Queue the posted jobs, then `jobs`, as one item: one commit takes all."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        posted, self._posted = self._posted, []
        if posted or jobs:
            self._jobs.put(posted + jobs)

    def close(self) -> None:
        self._hand_over([_STOP])
        self._thread.join()
        self.store.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            stop = _STOP in batch
            self._commit([job for job in batch if job is not _STOP])
            if stop:
                return

    def _next_batch(self) -> list:
        """The next jobs, and every job already waiting behind them."""
        batch = self._jobs.get()
        while len(batch) < MAX_BATCH:
            try:
                batch += self._jobs.get_nowait()
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list) -> None:
        if not batch:
            return

        db = self.store.db
        outcomes = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for job, _, _ in batch:
                outcomes.append(self._run_job(job))
            db.execute("COMMIT")
            self.commits += 1
        except Exception as exc:  # the commit itself failed: nobody's work landed
            logger.exception("store commit failed")
            if db.in_transaction:
                db.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)

        for (_, loop, future), outcome in zip(batch, outcomes, strict=True):
            if future is not None:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            elif outcome[1] is not None:
                logger.error("store job failed: %s", outcome[1])

    def _run_job(self, job) -> tuple[Any, BaseException | None]:
        db = self.store.db
        db.execute("SAVEPOINT job")
        try:
            result = job(self.store)
        except Exception as exc:
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
            return None, exc
        db.execute("RELEASE job")
        return result, None


def _settle(future: asyncio.Future, result: Any, error: BaseException | None):
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
