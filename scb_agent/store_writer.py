"""Group commit: the agent's one thread that talks to the store.

Coroutines hand it work as functions of the Store. The thread takes every job
waiting, runs them in one transaction (each inside a savepoint, so one failure
does not undo its neighbours), commits once, and only then resolves each job's
future. Issuances that finish together so share one fsync, and no certificate
is sent before its row is on disk.
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
_STOP = object()


class StoreWriter:
    def __init__(self, path: Path):
        self.store = Store(path)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._thread.start()
        self.commits = 0

    def call(self, job: Callable[[Store], Any]) -> asyncio.Future:
        """Run `job` in the next transaction; the future resolves after COMMIT."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((job, loop, future))
        return future

    def post(self, job: Callable[[Store], Any]) -> None:
        """Like call, for work nobody waits on (it still commits in order)."""
        self._jobs.put((job, None, None))

    def close(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join()
        self.store.close()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break

            stop = _STOP in batch
            self._commit([job for job in batch if job is not _STOP])
            if stop:
                return

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
