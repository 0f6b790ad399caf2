"""Group commit: the agent's one thread that talks to the store.

Coroutines hand it work as functions of the Store. The thread takes every job
waiting, runs them in one transaction (each inside a savepoint, so one failure
does not undo its neighbours), commits once, and only then resolves each job's
future. Issuances that finish together so share one fsync, and no certificate
is sent before its row is on disk.

Work nobody waits on (a request received, a stage reached) may wait up to
POST_DELAY for company: it rides along with the next awaited job's commit
rather than paying an fsync of its own, so one issuance costs one commit.
"""

import asyncio
import logging
import queue
import threading
import time
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
            batch = self._next_batch()
            stop = _STOP in batch
            self._commit([job for job in batch if job is not _STOP])
            if stop:
                return

    def _next_batch(self) -> list:
        """Every job waiting; if none is awaited, what comes within POST_DELAY."""
        batch = [self._jobs.get()]
        urgent = _is_urgent(batch[0])
        deadline = time.monotonic() + POST_DELAY
        while len(batch) < MAX_BATCH:
            remaining = 0.0 if urgent else deadline - time.monotonic()
            try:
                job = self._jobs.get(timeout=max(0.0, remaining))
            except queue.Empty:
                break
            batch.append(job)
            urgent = urgent or _is_urgent(job)
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


def _is_urgent(job) -> bool:
    """Someone awaits this job (or it is the stop signal): commit at once."""
    return job is _STOP or job[2] is not None


def _settle(future: asyncio.Future, result: Any, error: BaseException | None):
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
