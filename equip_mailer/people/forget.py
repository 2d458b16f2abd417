"""Erasure (``forget``): a person removed from everywhere the tool keeps them, while past
campaigns' figures stay what they were and the person is never mailed again.

What happens to each kind of row, and why:

- ledger rows: the address becomes ``erased_key`` (a keyed hash, not reversible) and the
  name goes; the segment, QI level, practice, role and state stay, because the report's
  counts and breakdowns are made from them (counts, not people). The hash is also written
  as a suppression, so an old list that still has the address never mails it again;
- events (deliveries, clicks): kept for the counts, but their raw payload, user agent and
  IP hash go, and a webhook event's dedupe key (a plain hash of the address and fields
  beside it) becomes a keyed one; they point only at the hashed ledger row;
- registrations and attendance: kept as anonymous rows (so a past session's numbers stay
  right), with a placeholder that links to nothing; a place on a course still to come is
  cancelled first and given to the next person waiting, who is mailed;
- QI level history, open sign-up invites, notices (and their .eml files), team sign-in
  links and sessions: deleted; audit entries about them lose the name, and so do the
  attendance marks and level changes a team member recorded for other people;
- files: the outbox's .eml files addressed to them, and report, roster or preview files
  that name them (made again by their command, without the person).

SQLite keeps deleted bytes in free pages and the write-ahead log, so the erasure runs with
``secure_delete`` on and ends with a checkpoint and ``VACUUM``: afterwards the address is
in no byte of the database files (the test reads them).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.send.notice_transports import notice_file
from equip_mailer.signup import notify
from equip_mailer.signup.catalogue import load_course
from equip_mailer.signup.registration import cancel, get_registration, session_of
from equip_mailer.store import (
    add_suppression,
    attendance,
    attendance_log,
    events,
    immediate,
    ledger,
    notices,
    person_levels,
    registrations,
    signup_invites,
    suppressions,
    team_audit,
    team_sessions,
    team_signin_links,
)

from .records import erased_event_key, erased_key, erasure_key
from .retention import RETIRED_PREFIX

# .tmp: an outbox file a killed run was replacing (send/backends/outbox_files.py)
SCANNED_SUFFIXES = {".eml", ".csv", ".xlsx", ".html", ".htm", ".txt", ".json", ".ics", ".tmp"}


@dataclass
class Forgotten:
    """What ``forget`` did, for the command to print."""

    counts: dict[str, int] = field(default_factory=dict)  # what -> rows
    files: list[Path] = field(default_factory=list)  # deleted
    cancelled: list[str] = field(default_factory=list)  # places given up ("EQUIP Basics")
    promoted: int = 0  # people on a waiting list who got the place
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, n: int) -> None:
        if n:
            self.counts[what] = self.counts.get(what, 0) + n


def _cancel_places_to_come(
    conn: Connection, key: str, links: notify.MailLinks | None, now: dt.datetime, done: Forgotten
) -> None:
    ids = conn.execute(
        sa.select(registrations.c.id).where(
            registrations.c.email_key == key, registrations.c.status.in_(("confirmed", "waiting"))
        )
    ).scalars()
    for reg_id in list(ids):
        reg = get_registration(conn, reg_id)
        course = load_course(conn, reg.signup_course_id) if reg else None
        if reg is None or course is None:
            continue
        if not any(s.starts_at > now for s in session_of(course, reg)):
            continue  # a past session: the place was used (or not); nothing to give back
        change = cancel(conn, reg_id, now, by="erased")
        done.cancelled.append(course.name)
        if change.promoted:
            done.promoted += len(change.promoted)
            if links is not None:
                notify.promoted(conn, change.promoted, links, now)


def _anonymise_registrations(conn: Connection, key: str, done: Forgotten) -> dict[str, str]:
    """Returns the name each registration had (by id), for the audit entries naming it."""
    names = {
        str(r.id): r.name or ""
        for r in conn.execute(
            sa.select(registrations.c.id, registrations.c.name).where(
                registrations.c.email_key == key
            )
        )
    }
    for reg_id in names:
        conn.execute(
            registrations.update()
            .where(registrations.c.id == int(reg_id))
            .values(
                email="",
                email_key=f"erased-registration:{reg_id}",
                name="(erased)",
                practice=None,
                role=None,
                access_needs=None,
            )
        )
    done.add("registrations (kept as anonymous counts)", len(names))
    return names


def _anonymise_attendance(conn: Connection, key: str, done: Forgotten) -> None:
    ids = list(
        conn.execute(sa.select(attendance.c.id).where(attendance.c.email_key == key)).scalars()
    )
    for row_id in ids:
        conn.execute(
            attendance.update()
            .where(attendance.c.id == row_id)
            .values(email_key=f"erased-attendance:{row_id}")
        )
    done.add("attendance marks (kept as anonymous counts)", len(ids))


def _rekey_events(conn: Connection, which, secret: bytes) -> int:
    """Give the matching webhook events a keyed dedupe key (``erased_event_key``) and drop
    their raw payload, user agent and IP hash: the old key would confirm a guessed address."""
    derived = erasure_key(secret)
    rows = conn.execute(
        sa.select(events.c.id, events.c.dedupe_key).where(
            which,
            events.c.source == "webhook",
            # retention's key names nobody already, and purge would only retire it again
            sa.not_(events.c.dedupe_key.startswith(RETIRED_PREFIX, autoescape=True)),
        )
    ).all()
    for row in rows:
        conn.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(
                dedupe_key=erased_event_key(secret, row.dedupe_key, key=derived),
                raw=None,
                user_agent=None,
                ip_hash=None,
            )
        )
    return len(rows)


def _notice_events(conn: Connection, mailed: list[tuple[int, str]], secret: bytes) -> int:
    """Webhook events of their single emails: joined by the notice id in custom_args, which
    the raw event keeps (compact JSON, ``"notice_id":"12"``)."""
    n = 0
    for notice_id, _kind in mailed:
        n += _rekey_events(conn, events.c.raw.contains(f'"notice_id":"{notice_id}"'), secret)
    return n


def _ledger(
    conn: Connection, key: str, hashed: str, secret: bytes, done: Forgotten
) -> list[tuple[str, int]]:
    rows = conn.execute(
        sa.select(ledger.c.id, ledger.c.campaign_id, ledger.c.state).where(
            ledger.c.email_key == key
        )
    ).all()
    for row in rows:
        state = "suppressed" if row.state == "pending" else row.state
        conn.execute(
            ledger.update()
            .where(ledger.c.id == row.id)
            .values(
                email=hashed,
                email_key=hashed,
                first_name=None,
                last_name=None,
                error=None,
                state=state,
            )
        )
    done.add("campaign ledger rows (address replaced by a keyed hash)", len(rows))
    ids = [r.id for r in rows]
    if ids:
        _rekey_events(conn, events.c.ledger_id.in_(ids), secret)
        n = conn.execute(
            events.update()
            .where(events.c.ledger_id.in_(ids))
            .values(raw=None, user_agent=None, ip_hash=None)
        ).rowcount
        done.add("email events (raw payload, user agent and IP hash removed)", n)
    # a webhook event that named the address but matched no ledger row
    n = conn.execute(
        events.update()
        .where(sa.func.lower(events.c.raw).contains(key, autoescape=True))
        .values(raw=None, user_agent=None, ip_hash=None)
    ).rowcount
    done.add("other email events naming the address", n)
    # a bounce's SMTP answer often quotes the address: "550 <ann@nhs.example>: unknown"
    quoting = conn.execute(
        sa.select(events.c.id, events.c.reason).where(
            sa.func.lower(events.c.reason).contains(key, autoescape=True)
        )
    ).all()
    for quote in quoting:
        conn.execute(
            events.update()
            .where(events.c.id == quote.id)
            .values(reason=re.sub(re.escape(key), "(erased)", quote.reason, flags=re.I))
        )
    done.add("bounce reasons quoting the address", len(quoting))
    return [(r.campaign_id, r.id) for r in rows]


def _delete(conn: Connection, table: sa.Table, column: sa.Column, key: str) -> int:
    return conn.execute(table.delete().where(column == key)).rowcount


def _named_in_passing(conn: Connection, names: dict[str, str]) -> int:
    """Entries about someone else that name them as "Name (registration 12)": cancelling a
    place logs who was given it. Only their name goes; the entry stays about the other."""
    n = 0
    for reg_id, name in names.items():
        label = f"(registration {reg_id})"
        rows = conn.execute(
            sa.select(team_audit.c.id, team_audit.c.summary).where(
                team_audit.c.summary.contains(label, autoescape=True)
            )
        ).all()
        for row in rows:
            named = f"{name} {label}"
            summary = (
                row.summary.replace(named, f"(erased) {label}")
                if name and named in row.summary
                else "(about a person since erased)"
            )
            conn.execute(
                team_audit.update().where(team_audit.c.id == row.id).values(summary=summary)
            )
        n += len(rows)
    return n


def _team(conn: Connection, key: str, names: dict[str, str], done: Forgotten) -> None:
    done.add(
        "team sign-in links", _delete(conn, team_signin_links, team_signin_links.c.email_key, key)
    )
    done.add("team sessions", _delete(conn, team_sessions, team_sessions.c.email_key, key))
    n = conn.execute(
        team_audit.update().where(sa.func.lower(team_audit.c.actor) == key).values(actor="(erased)")
    ).rowcount
    about = sa.or_(
        sa.func.lower(team_audit.c.summary).contains(key, autoescape=True),
        sa.and_(
            team_audit.c.target_kind == "registration",
            team_audit.c.target_id.in_(list(names) or [""]),
        ),
    )
    n += conn.execute(
        team_audit.update().where(about).values(summary="(about a person since erased)")
    ).rowcount
    n += _named_in_passing(conn, names)
    done.add("team audit entries (name removed)", n)
    # the marks a team member made and the levels they raised are about other people, so
    # they stay; only who made them goes (the audit log's actor goes the same way)
    n = 0
    for table in (attendance, attendance_log, person_levels):
        n += conn.execute(
            table.update()
            .where(sa.func.lower(table.c.recorded_by) == key)
            .values(recorded_by="(erased)")
        ).rowcount
    done.add("attendance marks and levels they recorded (their name removed)", n)


def _erase_rows(
    conn: Connection,
    key: str,
    secret: bytes,
    links: notify.MailLinks | None,
    now: dt.datetime,
) -> tuple[Forgotten, list[tuple[str, int]], list[tuple[int, str]]]:
    hashed = erased_key(secret, key)
    done = Forgotten()
    _cancel_places_to_come(conn, key, links, now, done)
    names = _anonymise_registrations(conn, key, done)
    _anonymise_attendance(conn, key, done)
    done.add("QI level history", _delete(conn, person_levels, person_levels.c.email_key, key))
    done.add("open sign-up invites", _delete(conn, signup_invites, signup_invites.c.email_key, key))
    mailed = [
        (r.id, r.kind)
        for r in conn.execute(
            sa.select(notices.c.id, notices.c.kind).where(notices.c.email_key == key)
        )
    ]
    done.add("single emails (notices)", _delete(conn, notices, notices.c.email_key, key))
    done.add(
        "events of their single emails (raw payload removed)", _notice_events(conn, mailed, secret)
    )
    sent = _ledger(conn, key, hashed, secret, done)
    was_suppressed = _delete(conn, suppressions, suppressions.c.email_key, key)
    add_suppression(conn, hashed, "erased", source="forget")
    done.add("suppression (now kept as the keyed hash)", was_suppressed)
    _team(conn, key, names, done)
    return done, sent, mailed


def _mentions(path: Path, needle: bytes) -> bool:
    """Whether a file names the address: plain text, or inside a workbook's XML."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as book:
                return any(needle in book.read(name).lower() for name in book.namelist())
        return needle in path.read_bytes().lower()
    except (OSError, zipfile.BadZipFile):
        return False


def _files(
    outbox: Path,
    sent: Iterable[tuple[str, int]],
    mailed: Iterable[tuple[int, str]],
    folders: Iterable[Path],
    key: str,
) -> list[Path]:
    """Delete the outbox's .eml files to them and any other file that names them."""
    known = [outbox / campaign / f"{ledger_id:06d}.eml" for campaign, ledger_id in sent]
    known += [notice_file(outbox, notice_id, kind) for notice_id, kind in mailed]
    needle = key.encode("utf-8")
    found = [p for p in known if p.is_file()]
    for folder in (outbox, *folders):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix.lower() in SCANNED_SUFFIXES and path.is_file() and path not in found:
                if _mentions(path, needle):
                    found.append(path)
    for path in list(found):
        # a roster's printed sign-in sheet names them (and their access needs) without the
        # address, so it goes with the roster files that have it
        sheet = path.with_name(f"{path.stem}_sign-in.html")
        if path.suffix.lower() in (".csv", ".xlsx") and sheet.is_file() and sheet not in found:
            found.append(sheet)
    for path in found:
        path.unlink(missing_ok=True)
    return found


def files_naming(folder: Path, email: str) -> list[Path]:
    """The files under ``folder`` (the project's lists/) whose bytes, or a workbook's XML,
    name ``email``: the team's own files, which forget never changes but names, so that a
    copy no spec reads (a ``people export``, an old list) is not left holding the person."""
    needle = email.strip().lower().encode("utf-8")
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SCANNED_SUFFIXES and path.is_file() and _mentions(path, needle)
    )


def _scrub_sqlite(engine: Engine, done: Forgotten) -> None:
    """Rewrite the SQLite file so no freed page or log frame keeps an old copy."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in (ledger, events, registrations, attendance, notices, suppressions):
                conn.exec_driver_sql(f"VACUUM {table.name}")
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.exec_driver_sql("VACUUM")
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        except sa.exc.OperationalError as exc:
            done.notes.append(
                f"the database is in use ({exc.orig}); old copies of the erased rows are "
                "overwritten when it is next idle: run forget again then to be sure"
            )
            return
        if busy and busy[0]:
            done.notes.append(
                "another program (the service?) was reading the database, so its log could "
                "not be emptied yet; run forget again when it is idle to be sure"
            )


def leftovers(conn: Connection, key: str) -> list[str]:
    """Every text column of every table still holding the address ("table.column: n"):
    the check that nothing was missed, including tables added after this module."""
    from equip_mailer.store import metadata

    found = []
    tables = set(sa.inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in tables:
            continue
        for column in table.columns:
            if isinstance(column.type, sa.String):  # Text is a String too
                n = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(sa.func.lower(column).contains(key, autoescape=True))
                ).scalar()
                if n:
                    found.append(f"{table.name}.{column.name}: {n}")
    return found


def forget(
    engine: Engine,
    email: str,
    secret: bytes,
    *,
    outbox: Path,
    folders: Iterable[Path] = (),
    links: notify.MailLinks | None = None,
    now: dt.datetime,
) -> Forgotten:
    """Erase ``email`` everywhere (see the module's docstring); idempotent."""
    key = email.strip().lower()
    with immediate(engine) as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete=ON")  # freed bytes are zeroed
        done, sent, mailed = _erase_rows(conn, key, secret, links, now)
        for place in leftovers(conn, key):
            done.notes.append(f"the address is still in {place} row(s): tell the developers")
    done.files = _files(outbox, sent, mailed, folders, key)
    _scrub_sqlite(engine, done)
    return done
