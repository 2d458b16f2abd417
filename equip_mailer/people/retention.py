"""Retention: after ``retention_days`` (default 400, a year and a quarter: long enough to
compare one quarter's campaign with the same quarter next year) the details kept only to
settle questions about a send go, and the counts stay.

``purge`` removes, from rows older than the limit: the raw webhook payload, the user agent
and the IP hash of events (the event itself stays: it is what the report counts); open
sign-up invites (an address and an IP hash kept for the double opt-in and its rate limit);
and the address and text of single emails already sent, refused or never answered (the
row stays, emptied, so its idempotency key still stops a second copy), with the file the
outbox wrote for one when SendGrid was not configured. ``purge`` runs it on
demand and ``serve`` runs it once a day. Running it twice changes nothing the second time.

A webhook event's dedupe key is a plain SHA-256 of the address and of fields stored in the
same row (track/webhook.py ``dedupe_key``), so whoever holds the store can confirm a guessed
address with it. It is needed only while SendGrid may post the event again (``RETRY_WINDOW``),
so once that is over and the event's raw payload is gone (past the limit, or its person
erased) the key is "retired:<event id>", derived from nothing about anyone.
That is what unties an emptied single email's events from its reader (nothing else names
them, so ``forget`` could not find them), and what removes the plain keys that erasures
made before their events were keyed (``forget`` now keys them; ``erased_event_key``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.errors import ConfigError
from equip_mailer.send.notice_transports import notice_file
from equip_mailer.store import events, notices, signup_invites, utcnow

log = logging.getLogger(__name__)
DAY = 24 * 60 * 60
# SendGrid's Event Webhook retries a failed post "for up to 24 hours after the event occurs"
# (its troubleshooting page; a duplicate post may come later still); 72 hours is the longest
# retry any of its webhooks makes (Inbound Parse), and a day more covers clocks
RETRY_WINDOW = dt.timedelta(days=4)
RETIRED_PREFIX = "retired:"
# single emails nobody sends again by themselves: sent, refused, or never answered (an
# operator may requeue a failed or uncertain one, but not a year and more on)
FINISHED_NOTICES = ("sent", "failed", "uncertain")


@dataclass(frozen=True)
class Purged:
    cutoff: dt.datetime
    events: int  # events whose payload, user agent or IP hash were removed
    invites: int
    notices: int
    keys: int = 0  # events whose dedupe key was retired
    files: int = 0  # outbox files of emptied single emails, deleted

    @property
    def total(self) -> int:
        return self.events + self.invites + self.notices + self.keys + self.files


def cutoff_for(days: int, now: dt.datetime) -> dt.datetime:
    if days < 1:
        raise ConfigError(
            f"EQUIP_RETENTION_DAYS is {days}; it must be at least 1 day",
            hint="Leave it unset for the default, 400 days.",
        )
    return now - dt.timedelta(days=days)


def _retire_keys(conn: Connection, now: dt.datetime) -> int:
    """Retire the dedupe key of webhook events SendGrid can no longer repeat and whose raw
    payload is gone (see the module's docstring); one statement, done in the database."""
    retired = sa.literal(RETIRED_PREFIX) + sa.cast(events.c.id, sa.String)
    return conn.execute(
        events.update()
        .where(
            events.c.source == "webhook",
            events.c.raw.is_(None),
            events.c.received_at < now - RETRY_WINDOW,
            sa.not_(events.c.dedupe_key.startswith(RETIRED_PREFIX, autoescape=True)),
        )
        .values(dedupe_key=retired)
    ).rowcount


def _emptied_files(conn: Connection, outbox: Path) -> list[Path]:
    """The outbox files (``OutboxNotices``) of single emails purge has emptied: the file
    holds what the row no longer does (address, name, text)."""
    folder = outbox / "notices"
    if not folder.is_dir():
        return []
    rows = conn.execute(
        sa.select(notices.c.id, notices.c.kind).where(
            notices.c.email == "", notices.c.state.in_(FINISHED_NOTICES)
        )
    )
    paths = (notice_file(outbox, r.id, r.kind) for r in rows)
    return [p for p in paths if p.is_file()]


def purge(
    engine: Engine,
    days: int,
    now: dt.datetime | None = None,
    *,
    outbox: Path | None = None,
    dry_run: bool = False,
) -> Purged:
    """Remove what is past the retention limit; one transaction, rolled back for a dry run
    (so its counts are exactly what a real run would change). With ``outbox``, the files
    of the single emails emptied go too, once the transaction is committed."""
    now = now or utcnow()
    cutoff = cutoff_for(days, now)
    with engine.connect() as conn, conn.begin() as tx:
        n_events = conn.execute(
            events.update()
            .where(
                events.c.at < cutoff,
                sa.or_(
                    events.c.raw.is_not(None),
                    events.c.user_agent.is_not(None),
                    events.c.ip_hash.is_not(None),
                ),
            )
            .values(raw=None, user_agent=None, ip_hash=None)
        ).rowcount
        n_invites = conn.execute(
            signup_invites.delete().where(signup_invites.c.created_at < cutoff)
        ).rowcount
        n_notices = conn.execute(
            notices.update()
            .where(
                notices.c.state.in_(FINISHED_NOTICES),
                notices.c.created_at < cutoff,
                notices.c.email != "",
            )
            .values(email="", email_key="", name=None, text="", html=None, attachments=None)
        ).rowcount
        n_keys = _retire_keys(conn, now)
        files = _emptied_files(conn, outbox) if outbox is not None else []
        if dry_run:
            tx.rollback()
    if not dry_run:
        for path in files:
            path.unlink(missing_ok=True)
    return Purged(
        cutoff=cutoff,
        events=n_events,
        invites=n_invites,
        notices=n_notices,
        keys=n_keys,
        files=len(files),
    )


class DailyPurge:
    """Runs ``purge`` now and then every day in a background thread (``serve``); a failure
    is logged and tried again the next day, never stopping the service."""

    def __init__(
        self,
        engine: Engine,
        days: int,
        *,
        writing: AbstractContextManager[Any] | None = None,
        interval: float = DAY,
        outbox: Path | None = None,
    ):
        cutoff_for(days, utcnow())  # a bad setting stops serve at start, not at night
        self.engine, self.days, self.interval = engine, days, interval
        self.outbox = outbox  # where the service writes single emails without SendGrid
        # the service's SQLite write queue, so the purge waits its turn like a click
        self.writing = writing if writing is not None else contextlib.nullcontext()
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="equip-purge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.writing:
                    done = purge(self.engine, self.days, outbox=self.outbox)
                self.runs += 1
                if done.total:
                    log.info(
                        "retention: purged %d events, %d invites, %d notices older than %s; "
                        "retired %d events' dedupe keys; deleted %d outbox files",
                        done.events,
                        done.invites,
                        done.notices,
                        done.cutoff.date(),
                        done.keys,
                        done.files,
                    )
            except Exception:  # noqa: BLE001 - tried again tomorrow; the service carries on
                log.exception("retention purge failed; trying again in a day")
            self._stop.wait(self.interval)
