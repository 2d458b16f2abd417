"""The service's background sender of notices: a page that registers someone answers at
once, and their confirmation follows within a moment, from one thread per process.

Pages commit the change and its notice together, then call ``wake()``. The worker also
wakes by itself every ``POLL`` seconds, for notices whose retry time has come and for those
another process enqueued (a command, another worker), and on start it settles what a dead
process left half sent (``NoticeSender.recover``). ``close()`` finishes the message in hand
and stops; anything still pending is sent by the next start.
"""

from __future__ import annotations

import logging
import threading

from .notices import NoticeCounts, NoticeSender

log = logging.getLogger("equip_mailer.send.notices")


class NoticeWorker:
    POLL = 30.0  # seconds between looks when nobody wakes the worker

    def __init__(self, sender: NoticeSender):
        self.sender = sender
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Passes asked for and passes finished: drain() waits for a pass that began after it.
        self._passes = threading.Condition()
        self._asked = 0
        self._finished = 0
        self.totals = NoticeCounts()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="equip-notices", daemon=True)
                self._thread.start()

    def wake(self) -> int:
        """Send what is pending now (call after committing a notice); returns the pass number."""
        with self._passes:
            self._asked += 1
            asked = self._asked
        self._wake.set()
        self.start()
        return asked

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything due when called has been tried (tests, shutdown); False on
        timeout."""
        asked = self.wake()
        with self._passes:
            return self._passes.wait_for(lambda: self._finished >= asked, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            recovered = self.sender.recover()
            if recovered:
                log.info("notices: settled %d left half sent by a stopped process", recovered)
        except Exception as exc:  # noqa: BLE001 - the database may be briefly away
            log.error("notices: could not check for half-sent messages (%s)", type(exc).__name__)
        while not self._stop.is_set():
            self._wake.clear()
            with self._passes:
                this_pass = self._asked
            try:
                counts = self.sender.deliver_pending()
                self.totals.sent += counts.sent
                self.totals.failed += counts.failed
                self.totals.uncertain += counts.uncertain
                self.totals.retry_later += counts.retry_later
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; retried on next wake
                log.error("notices: sending stopped (%s); will try again", type(exc).__name__)
            with self._passes:
                self._finished = max(self._finished, this_pass)
                self._passes.notify_all()
            self._wake.wait(self.POLL)
