"""Clicks are answered first and written just after, by one writer thread per app.

The click route puts each click's ``events`` row on an in-process queue that ONE writer
thread (``ClickWriter``) drains in batches: one transaction per batch, ``executemany`` for
the inserts, then the machine-click pass for the batch's recipients (their earlier clicks
included, so bursts are caught exactly as with one insert per click). The writer takes
whatever is queued as soon as it is free, waiting at most ``ClickWriter.GATHER`` for more,
so a click is visible to readers within milliseconds of its redirect under normal load;
``flush()`` waits until everything queued so far is stored, and the app's shutdown flushes
and stops the writer. This took the click off the threadpool: the hop to a worker thread
and back cost more CPU than the click's own SQLite work (benchmarks/README.md).

The trade-off, accepted for click analytics: a click that was redirected but not yet
written (normally a few ms' worth; more only if the database is stalled) is lost if the
process dies without a shutdown (kill -9, power loss), and a click whose batch the database
refuses (after one retry) is logged and dropped - the reader still got their page. At most
``ClickWriter.MAX_PENDING`` clicks wait; beyond that, new clicks are redirected but not
recorded (and logged), so a dead database cannot eat the memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import weakref
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Connection, Engine

from equip_mailer.store import events

from . import machines
from .privacy import db_error

log = logging.getLogger("equip_mailer.track")

ClickRow = dict[str, Any]  # one row of store.events, source "tracker" (see clicks.click_event)

_CLICK = events.insert()
_STOP = object()
_WRITERS: weakref.WeakSet[ClickWriter] = weakref.WeakSet()


def store_clicks(conn: Connection, rows: list[ClickRow]) -> None:
    """Insert clicks (in arrival order) and run the machine pass for their recipients."""
    conn.execute(_CLICK, rows)
    machines.reclassify(
        conn,
        {(r["campaign_id"], r["ledger_id"]) for r in rows},
        new_since=min(r["at"] for r in rows),
    )


def flush_clicks(timeout: float = 10.0) -> bool:
    """Flush every click writer in this process (for tests and embedding code); False on timeout."""
    done = [w.flush(timeout) for w in list(_WRITERS)]  # every writer, even after a timeout
    return all(done)


class ClickWriter:
    """One thread that writes queued clicks in batches; see the module docstring."""

    BATCH = 1000  # clicks per transaction at most
    GATHER = 0.020  # seconds the writer waits for more clicks after the first
    MAX_PENDING = 100_000  # clicks waiting at most; beyond that they are dropped (logged)
    RETRY_AFTER = 0.5
    # Backpressure: past BACKLOG waiting clicks, a redirect waits (up to MAX_WAIT) for the
    # writer to catch up. Under a load the writer cannot follow, the event loop would
    # otherwise keep the GIL busy, starve the writer and let the queue (and the delay before
    # a click is visible) grow without bound; this keeps that delay at a fraction of a second.
    BACKLOG = 1000
    MAX_WAIT = 0.5

    def __init__(self, engine: Engine, writing: AbstractContextManager[Any]):
        self.engine, self.writing = engine, writing
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = self.dropped = 0
        self._warned_full = False
        _WRITERS.add(self)

    def submit(self, row: ClickRow) -> None:
        if self._queue.qsize() >= self.MAX_PENDING:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.error(
                    "click queue full (%d waiting): clicks are redirected but not recorded "
                    "until the database catches up",
                    self.MAX_PENDING,
                )
            return
        self._ensure_thread()
        self._queue.put(row)

    def pending(self) -> int:
        return self._queue.qsize()

    async def keep_up(self) -> None:
        """Wait while the writer is more than BACKLOG clicks behind (at most MAX_WAIT)."""
        if self._queue.qsize() <= self.BACKLOG:
            return
        deadline = time.monotonic() + self.MAX_WAIT
        while self._queue.qsize() > self.BACKLOG // 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every click submitted so far is written (or dropped); False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread (a later click starts it again)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "the click writer did not finish within %.0f s; %d clicks may be lost",
                timeout,
                self._queue.qsize(),
            )
        else:
            # One line per process at shutdown: with several workers, which wrote what.
            log.info(
                "click writer of process %d stopped: %d clicks written, %d dropped",
                os.getpid(),
                self.written,
                self.dropped,
            )

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="click-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            batch = [get()]
            if isinstance(batch[0], dict):
                time.sleep(self.GATHER)  # let a few more arrive: one transaction for them all
            while len(batch) < self.BATCH:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            rows = [item for item in batch if isinstance(item, dict)]
            if rows:
                self._write(rows)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is _STOP for item in batch):
                return

    def _write(self, rows: list[ClickRow]) -> None:
        for attempt in (1, 2):
            try:
                with self.writing, self.engine.begin() as conn:
                    store_clicks(conn, rows)
                self.written += len(rows)
                self._warned_full = False
                return
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any error
                if attempt == 2:
                    self.dropped += len(rows)
                    log.error(
                        "could not record %d clicks (%s); they were redirected but are lost",
                        len(rows),
                        db_error(exc),
                    )
                    return
                time.sleep(self.RETRY_AFTER)
