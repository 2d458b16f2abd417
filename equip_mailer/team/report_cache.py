"""The live report's cache: a campaign's report is counted once per change of the store, not
once per page view.

Counting a 100k-recipient campaign with a million events takes seconds; a page must answer
in well under 100 ms. So each report is kept with the ``Version`` of the store it was
counted from: the newest event id (every click, delivery and bounce is a new event), the
newest batch id, the campaign's ledger counts per state (a send moving recipients to
``sent``), its link count and the recorded spec file's mtime (names). Reading the version
costs a few index lookups. When it has moved on, the page shows the last report at once,
saying how old it is, while one background thread counts the new one ("stale while
revalidate"); a view that finds nothing counted yet waits for the first count. The version
itself is read at most once a second per campaign, and then by a helper thread, so a page
view normally makes no query for it at all.

Counting runs in a process of its own (one, kept for the service's life): counting a million
events is Python and pandas work that would hold the service's interpreter lock for tens
of seconds and stall every page and click meanwhile. The process returns everything a page
or a download needs, made once: the ``Report``, the page's content (``report_context``), the
sections' HTML and the files.

On PostgreSQL, where an id can become visible after a higher one, the version also holds
the minute, so a view at most a minute later counts again.

The first count of a campaign refreshes the machine flags of every click, as the command
does; later counts only those of recipients with newer events (the same result: a click's
flag depends on its recipient's events alone and is never taken back), so a recount after a
few new clicks costs the count, not a pass over a million events.

Counting itself is ``report.stored.stored_report``, exactly what ``equip-mailer report``
runs, and the page and the downloads are made from its ``Report`` by the report package's
own ``report_context``, ``write_xlsx`` and ``write_csv``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import os
import select
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from equip_mailer.report.model import Report
from equip_mailer.send.ledger_rows import count_states
from equip_mailer.send.lock_owner import pid_alive
from equip_mailer.store import batches, campaigns, events, links, utcnow

log = logging.getLogger("equip_mailer.team")

KEPT = 8  # reports kept (campaign x human/all); the team looks at a handful at a time
CHECK_EVERY = 1.0  # seconds a version read is trusted for before it is read again
PRELOAD = [  # what the counting process needs, imported once by the fork server
    "equip_mailer.report.stored",
    "equip_mailer.report.page",
    "equip_mailer.report.spreadsheets",
    "equip_mailer.team.report_cache",
    "openpyxl",
]


@dataclass(frozen=True)
class Version:
    """What a report was counted from; equal versions give equal reports."""

    last_event: int
    last_batch: int
    ledger_states: tuple[tuple[str, int], ...]
    link_count: int
    spec: tuple[str | None, float | None]  # the recorded spec file and its mtime
    # PostgreSQL only: the minute. Its ids are handed out before commit, so an event can
    # become visible after a higher id was seen; on SQLite (one writer) ids arrive in order.
    minute: int = 0


def current_version(engine: Engine, campaign_id: str) -> Version | None:
    """The store's version for one campaign; None if the campaign has no row."""
    with engine.connect() as conn:
        spec_path = conn.execute(
            sa.select(campaigns.c.spec_path).where(campaigns.c.id == campaign_id)
        ).first()
        if spec_path is None:
            return None
        last_event = conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
        last_batch = conn.execute(sa.select(sa.func.max(batches.c.id))).scalar() or 0
        states = sorted(count_states(conn, campaign_id).items())  # what the ledger page shows
        link_count = conn.execute(
            sa.select(sa.func.count()).select_from(links).where(links.c.campaign_id == campaign_id)
        ).scalar_one()
    ordered = engine.dialect.name == "sqlite"
    path = spec_path[0]
    try:
        mtime = os.stat(path).st_mtime if path else None
    except OSError:
        mtime = None
    return Version(
        last_event=int(last_event),
        last_batch=int(last_batch),
        ledger_states=tuple((s, int(n)) for s, n in states),
        link_count=int(link_count),
        spec=(path, mtime),
        minute=0 if ordered else int(time.time() // 60),
    )


@dataclass(frozen=True)
class Counted:
    """One counted report and everything made from it, once: what a page and a download
    serve without further work."""

    version: Version
    report: Report
    context: dict[str, Any]  # report_context: cards, sections (tables + charts), notes
    sections_html: str  # report_sections.html.j2 rendered with ``context``
    files: dict[str, bytes]  # "report.xlsx" and "<table key>.csv", as the command writes them
    counted_at: dt.datetime  # naive UTC
    seconds: float  # how long counting took

    def xlsx(self) -> bytes:
        """report.xlsx as ``equip-mailer report`` writes it: Summary, then a sheet per table."""
        return self.files["report.xlsx"]

    def csv(self, key: str) -> bytes | None:
        """One table's CSV as the command writes it; None if the report has no such table."""
        return self.files.get(f"{key}.csv")


def count_report(
    url: str, campaign_id: str, human_only: bool, since_event: int | None
) -> tuple[Report, dict[str, Any], str, dict[str, bytes], dt.datetime, float]:
    """In the counting process: the report as ``equip-mailer report`` counts it, its page
    content, its sections' HTML and its files."""
    from equip_mailer.report.files import summary_rows
    from equip_mailer.report.page import report_context
    from equip_mailer.report.spreadsheets import write_csv, write_xlsx
    from equip_mailer.report.stored import stored_report

    from .render import environment

    started = time.monotonic()
    report = stored_report(_engine(url), campaign_id, human_only, None, since_event)
    now = utcnow()
    context = report_context(report, now.replace(tzinfo=dt.UTC))
    html = environment().get_template("report_sections.html.j2").render(**context)
    files = {}
    with tempfile.TemporaryDirectory(prefix="equip-team-") as folder:
        path = write_xlsx(
            list(report.tables.values()),
            Path(folder) / "report.xlsx",
            summary=summary_rows(report),
        )
        files["report.xlsx"] = path.read_bytes()
        for table in report.tables.values():
            files[f"{table.key}.csv"] = write_csv(table, Path(folder) / "t.csv").read_bytes()
    return report, context, html, files, now, time.monotonic() - started


_ENGINES: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    """The counting process's own engine for ``url`` (kept between counts)."""
    if url not in _ENGINES:
        from equip_mailer.store import open_store

        _ENGINES[url] = open_store(url)
    return _ENGINES[url]


@dataclass(frozen=True)
class Lookup:
    """What a page gets: the report (None while the first count runs) and whether it is
    the store's current state (``fresh``) or an older one while a new count runs."""

    counted: Counted | None
    fresh: bool

    @property
    def counting(self) -> bool:
        return not self.fresh


@dataclass
class _Seen:
    version: Version | None  # None: no such campaign
    at: float  # time.monotonic() of the read
    checking: bool = False


class ReportCache:
    """Counted reports per (campaign, human only), counted one at a time in one process."""

    def __init__(self, engine: Engine, kept: int = KEPT, in_process: bool = False) -> None:
        """``in_process``: count in a thread of this process (tests of the cache itself)."""
        self.engine, self.kept = engine, kept
        self.url = engine.url.render_as_string(hide_password=False)
        self._done: OrderedDict[tuple[str, bool], Counted] = OrderedDict()
        self._running: dict[tuple[str, bool], concurrent.futures.Future] = {}
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()
        self._checks = concurrent.futures.ThreadPoolExecutor(1, "team-report-version")
        self._waiters = concurrent.futures.ThreadPoolExecutor(2, "team-report-count")
        self._pool: concurrent.futures.Executor | None = None
        self._in_process = in_process
        self._closed = False
        self._ordered = engine.dialect.name == "sqlite"
        self.counts = 0  # reports counted, for tests and the benchmark

    # --- the store's version, read at most once a second --------------------------------

    def version(self, campaign_id: str) -> Version | None:
        """The newest version known (None: no such campaign); read now if never read, else
        refreshed in the background once it is older than CHECK_EVERY. The campaigns page
        takes its ledger counts from it too."""
        with self._lock:
            seen = self._seen.get(campaign_id)
            if seen is not None:
                if time.monotonic() - seen.at > CHECK_EVERY and not seen.checking:
                    seen.checking = True
                    self._checks.submit(self._check, campaign_id)
                return seen.version
        return self._check(campaign_id)

    def _check(self, campaign_id: str) -> Version | None:
        try:
            version = current_version(self.engine, campaign_id)
        except Exception:
            with self._lock:
                if campaign_id in self._seen:
                    self._seen[campaign_id].checking = False
            raise
        with self._lock:
            self._seen[campaign_id] = _Seen(version, time.monotonic())
        return version

    # --- the reports ---------------------------------------------------------------------

    def lookup(
        self,
        campaign_id: str,
        human_only: bool = True,
        wait: float = 0.05,
        first_wait: float = 20,
    ) -> Lookup | None:
        """The report to show now; None if the campaign is not in the store.

        Waits up to ``wait`` seconds for a newer count before showing the older one, and up
        to ``first_wait`` when there is nothing counted yet.
        """
        version = self.version(campaign_id)
        if version is None:
            return None
        key = (campaign_id, human_only)
        with self._lock:
            have = self._done.get(key)
            if have is not None and have.version == version:
                self._done.move_to_end(key)
                return Lookup(have, fresh=True)
            future = self._start(key, version)
        try:
            counted = future.result(timeout=wait if have is not None else first_wait)
        except concurrent.futures.TimeoutError:
            return Lookup(have, fresh=False)
        return Lookup(counted, fresh=counted.version == version)

    def prefetch(self, campaign_id: str, human_only: bool = True) -> None:
        """Start counting a report that is missing or out of date, without waiting."""
        version = self.version(campaign_id)
        if version is None:
            return
        key = (campaign_id, human_only)
        with self._lock:
            have = self._done.get(key)
            if have is None or have.version != version:
                self._start(key, version)

    def _start(self, key: tuple[str, bool], version: Version) -> concurrent.futures.Future:
        """The running count for ``key`` (a new one unless one is running); lock held."""
        running = self._running.get(key)
        if running is not None and not running.done():
            return running
        future = self._waiters.submit(self._count, key, version)
        self._running[key] = future
        return future

    def _counter(self) -> concurrent.futures.Executor:
        if self._pool is None:
            if self._in_process:
                self._pool = concurrent.futures.ThreadPoolExecutor(1, "team-report-counter")
            else:
                self._pool = counting_pool()
        return self._pool

    def _count(self, key: tuple[str, bool], version: Version) -> Counted:
        campaign_id, human_only = key
        with self._lock:  # the flags were refreshed up to here by an earlier count
            before = [
                c.version.last_event for (cid, _), c in self._done.items() if cid == campaign_id
            ]
        # Only where ids arrive in commit order (SQLite); PostgreSQL: a full pass each time.
        since = max(before) if before and self._ordered else None
        try:
            made = self._counter().submit(count_report, self.url, campaign_id, human_only, since)
            report, context, html, files, now, seconds = made.result()
        except Exception:
            if not self._closed:  # else: stopped on purpose, the service is on its way out
                log.exception("team: could not count the report of %s", campaign_id)
            raise
        counted = Counted(version, report, context, html, files, now, seconds)
        with self._lock:
            self.counts += 1
            self._done[key] = counted
            self._done.move_to_end(key)
            while len(self._done) > self.kept:
                self._done.popitem(last=False)
        log.info("team: counted the report of %s in %.2f s", campaign_id, seconds)
        return counted

    def close(self) -> None:
        """Let go of the helpers; a count in progress is stopped, not waited for (a
        million events take tens of seconds, and a service asked to stop should stop)."""
        self._closed = True
        for pool in (self._checks, self._waiters):
            pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(self._pool, concurrent.futures.ProcessPoolExecutor):
            stop_counting(self._pool)
        elif self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def counting_pool() -> concurrent.futures.ProcessPoolExecutor:
    """The one counting process, forked by a fork server that has the report's modules
    imported: each counting process starts in milliseconds (plain fork would copy this
    process's threads' locks; spawn would import pandas again). It watches this process
    and leaves when it goes (``_leave_with``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return concurrent.futures.ProcessPoolExecutor(
        1, mp_context=context, initializer=_leave_with, initargs=(os.getpid(),)
    )


def stop_counting(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Shut the pool down and end its process now, even in the middle of a count: counting
    only reads the store, so nothing is lost. Without this the interpreter's exit waits for
    the count, and a service stopped meanwhile (SIGTERM, then SIGKILL after a grace period)
    left the counting process and its fork server behind."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)


def _leave_with(pid: int) -> None:
    """In the counting process: exit as soon as process ``pid`` (the service) has. Its
    parent is the fork server, not the service, and a pool worker waiting for its next job
    never notices the service go (it holds the write end of its own job queue): a service
    killed with SIGKILL left it, and the fork server waiting for it, running for good with
    a report's worth of memory."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)  # readable once the process has exited (Linux 5.3)
        except ProcessLookupError:
            os._exit(0)
        except (AttributeError, OSError):
            handle = None
        if handle is not None:
            select.select([handle], [], [])
        else:
            while pid_alive(pid):
                time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="equip-leave-with-service", daemon=True).start()


_MAKING = threading.Lock()


def cache_of(app_state: Any) -> ReportCache:
    """The app's ReportCache, made on first use from the service's engine."""
    with _MAKING:
        cache: ReportCache | None = getattr(app_state, "team_reports", None)
        if cache is None:
            cache = ReportCache(app_state.service.engine)
            app_state.team_reports = cache
    return cache
