"""The live report's cache: a campaign's report is counted once per change of the store, not
once per page view.

Counting a 100k-recipient campaign with a million events takes seconds; a page must answer
in well under 100 ms. So each report is kept with the ``Version`` of the store it was
counted from: the newest event id (every click, delivery and bounce is a new event), the
newest batch id, the campaign's ledger counts per state (a send moving recipients to
``sent``), its link count and the recorded spec file's mtime (names). Reading the version
costs a few index lookups. When it has moved on, the page shows the last report at once,
saying how old it is, while one background thread counts the new one ("stale while
revalidate"); a view that finds nothing counted yet waits for the first count.

Counting itself is ``report.stored.stored_report``, exactly what ``equip-mailer report``
runs, and the page and the downloads are made from its ``Report`` by the report package's
own ``report_context``, ``write_xlsx`` and ``write_csv``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from equip_mailer.report.files import summary_rows
from equip_mailer.report.model import Report
from equip_mailer.report.page import report_context
from equip_mailer.report.spreadsheets import write_csv, write_xlsx
from equip_mailer.report.stored import stored_report
from equip_mailer.store import batches, campaigns, events, ledger, links, utcnow

log = logging.getLogger("equip_mailer.team")

KEPT = 8  # reports kept (campaign x human/all); the team looks at a handful at a time


@dataclass(frozen=True)
class Version:
    """What a report was counted from; equal versions give equal reports."""

    last_event: int
    last_batch: int
    ledger_states: tuple[tuple[str, int], ...]
    link_count: int
    spec: tuple[str | None, float | None]  # the recorded spec file and its mtime


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
        states = conn.execute(
            sa.select(ledger.c.state, sa.func.count())
            .where(ledger.c.campaign_id == campaign_id)
            .group_by(ledger.c.state)
            .order_by(ledger.c.state)
        ).all()
        link_count = conn.execute(
            sa.select(sa.func.count()).select_from(links).where(links.c.campaign_id == campaign_id)
        ).scalar_one()
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
    )


@dataclass
class Counted:
    """One counted report, what the page shows of it, and its files once asked for."""

    version: Version
    report: Report
    context: dict[str, Any]  # report_context: cards, sections (tables + charts), notes
    counted_at: dt.datetime  # naive UTC
    seconds: float  # how long counting took
    _files: dict[str, bytes] = field(default_factory=dict)
    _html: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sections_html(self, render: Any) -> str:
        """The report's sections rendered once (``render(context) -> str``), not per view."""
        with self._lock:
            if self._html is None:
                self._html = render(self.context)
            return self._html

    def xlsx(self) -> bytes:
        """report.xlsx as ``equip-mailer report`` writes it: Summary, then a sheet per table."""
        return self._file(
            "report.xlsx",
            lambda path: write_xlsx(
                list(self.report.tables.values()), path, summary=summary_rows(self.report)
            ),
        )

    def csv(self, key: str) -> bytes | None:
        """One table's CSV as the command writes it; None if the report has no such table."""
        table = self.report.tables.get(key)
        if table is None:
            return None
        return self._file(f"{key}.csv", lambda path: write_csv(table, path))

    def _file(self, name: str, write: Any) -> bytes:
        with self._lock:
            if name not in self._files:
                with tempfile.TemporaryDirectory(prefix="equip-team-") as folder:
                    path = Path(folder) / name
                    write(path)
                    self._files[name] = path.read_bytes()
            return self._files[name]


@dataclass(frozen=True)
class Lookup:
    """What a page gets: the report (None while the first count runs) and whether it is
    the store's current state (``fresh``) or an older one while a new count runs."""

    counted: Counted | None
    fresh: bool

    @property
    def counting(self) -> bool:
        return not self.fresh


class ReportCache:
    """Counted reports per (campaign, human only), counted one at a time by one thread."""

    def __init__(
        self, engine: Engine, writing: AbstractContextManager[Any], kept: int = KEPT
    ) -> None:
        self.engine, self.writing, self.kept = engine, writing, kept
        self._done: OrderedDict[tuple[str, bool], Counted] = OrderedDict()
        self._running: dict[tuple[str, bool], tuple[Version, concurrent.futures.Future]] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="team-report")
        self.counts = 0  # reports counted, for tests and the benchmark

    def lookup(
        self, campaign_id: str, human_only: bool = True, wait: float = 0.05, first_wait: float = 20
    ) -> Lookup | None:
        """The report to show now; None if the campaign is not in the store.

        Waits up to ``wait`` seconds for a newer count before showing the older one, and up
        to ``first_wait`` when there is nothing counted yet.
        """
        version = current_version(self.engine, campaign_id)
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
        version = current_version(self.engine, campaign_id)
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
        if running is not None and not running[1].done():
            return running[1]
        future = self._pool.submit(self._count, key, version)
        self._running[key] = (version, future)
        return future

    def _count(self, key: tuple[str, bool], version: Version) -> Counted:
        campaign_id, human_only = key
        started = time.monotonic()
        try:
            report = stored_report(self.engine, campaign_id, human_only, self.writing)
        except Exception:
            log.exception("team: could not count the report of %s", campaign_id)
            raise
        now = utcnow()
        counted = Counted(
            version=version,
            report=report,
            context=report_context(report, now.replace(tzinfo=dt.UTC)),
            counted_at=now,
            seconds=time.monotonic() - started,
        )
        with self._lock:
            self.counts += 1
            self._done[key] = counted
            self._done.move_to_end(key)
            while len(self._done) > self.kept:
                self._done.popitem(last=False)
        log.info("team: counted the report of %s in %.2f s", campaign_id, counted.seconds)
        return counted

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_MAKING = threading.Lock()


def cache_of(app_state: Any) -> ReportCache:
    """The app's ReportCache, made on first use from the service's engine and write queue."""
    with _MAKING:
        cache: ReportCache | None = getattr(app_state, "team_reports", None)
        if cache is None:
            svc = app_state.service
            cache = ReportCache(svc.engine, svc.writing)
            app_state.team_reports = cache
    return cache
