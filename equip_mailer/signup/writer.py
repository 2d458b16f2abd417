"""Sign-up transactions run by one writer thread, many to a commit (group commit).

A submit's answer ("your place is confirmed") must be true when it is shown, so it waits for
the commit; with SQLite at ``synchronous=FULL`` a commit costs an fsync (several ms here),
which alone would cap one worker at a few dozen sign-ups a second. So every page hands its
transaction (a function of the connection) to ``RegistrationWriter.run`` and awaits it; the
writer thread takes whatever has arrived, opens ONE ``store.immediate`` transaction, runs
each in its own SAVEPOINT in arrival order (one that raises is rolled back alone, and its
page gets the exception), commits once, then answers every page. Order and the course lock
are as with one transaction each, so places are still never oversold; only the fsyncs are
shared. If the commit itself fails, every page of that batch gets the error (nothing of it
was stored) and says "try again".
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from equip_mailer.store import immediate

log = logging.getLogger("equip_mailer.signup")

T = TypeVar("T")
Job = Callable[[Connection], Any]


@dataclass
class _Pending:
    job: Job
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None
    done: threading.Event | None = None
    result: Any = None
    error: BaseException | None = None


_STOP = object()


class RegistrationWriter:
    """One thread, one transaction per batch of sign-up jobs; see the module docstring."""

    BATCH = 200  # jobs per transaction at most

    def __init__(self, engine: Engine, writing: AbstractContextManager[Any]):
        self.engine, self.writing = engine, writing
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = self.jobs = 0

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job(conn)`` in the next batch's transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        pending = _Pending(job, loop, loop.create_future())
        self._start()
        self._queue.put(pending)
        assert pending.future is not None
        result: T = await pending.future
        return result

    def run_sync(self, job: Callable[[Connection], T]) -> T:
        """The same from a plain thread (commands, tests)."""
        pending = _Pending(job, None, None, threading.Event())
        self._start()
        self._queue.put(pending)
        assert pending.done is not None
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        result: T = pending.result
        return result

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop (a later job starts the thread again)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(_STOP)
        thread.join(timeout)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="signup-writer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [i for i in items if isinstance(i, _Pending)]
            if batch:
                self._write(batch)
            if any(i is _STOP for i in items):
                return

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with self.writing, immediate(self.engine) as conn:
                for n, pending in enumerate(batch):
                    conn.exec_driver_sql(f"SAVEPOINT job{n}")
                    try:
                        pending.result = pending.job(conn)
                    except Exception as exc:  # noqa: BLE001 - this job's page gets it
                        conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT job{n}")
                        pending.error = exc
                    conn.exec_driver_sql(f"RELEASE SAVEPOINT job{n}")
        except Exception as exc:  # noqa: BLE001 - the commit failed: nothing was stored
            for pending in batch:
                pending.error, pending.result = exc, None
        self.batches += 1
        self.jobs += len(batch)
        for pending in batch:
            _answer(pending)


def _answer(pending: _Pending) -> None:
    if pending.done is not None:
        pending.done.set()
        return
    assert pending.loop is not None and pending.future is not None
    future = pending.future

    def settle() -> None:
        if future.cancelled():
            return
        if pending.error is not None:
            future.set_exception(pending.error)
        else:
            future.set_result(pending.result)

    try:
        pending.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop has closed (shutdown): nobody is waiting
        log.debug("sign-up answer dropped: the event loop has closed")
