"""Schema changes as ordered steps, applied on first use and recorded in ``meta``.

Each step must apply to a database at the previous version (add columns, tables, indexes,
or mend rows an older release left; never rewrite a step that has shipped), so a store
made by any earlier equip-mailer opens with a later one. SQLite and PostgreSQL run the same steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.errors import StoreError

from .notices import notices
from .people import PEOPLE_TABLES
from .schema import batches, campaigns, events, ledger, links, meta, metadata, suppressions
from .signups import SIGNUP_TABLES, signup_courses
from .team import TEAM_TABLES


def _v1(conn: Connection) -> None:
    metadata.create_all(
        conn, tables=[meta, campaigns, links, batches, ledger, events, suppressions]
    )


def _v2(conn: Connection) -> None:
    # One recipient's events of one type (the machine-click pass runs this per click).
    # Without it SQLite answers "campaign = ? AND ledger_id = ? AND event = ?" from
    # ix_events_campaign_event, scanning every event of that type in the campaign.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_events_recipient "
            "ON events (campaign_id, ledger_id, event)"
        )
    )
    # The send loop's next batch: one segment's rows in one state, oldest first.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_ledger_segment_state "
            "ON ledger (campaign_id, segment, state, id)"
        )
    )


def _v3(conn: Connection) -> None:
    # The machine-click pass reads one recipient's clicks of the last few seconds: with the
    # time in the index that is a range scan, not a filter over all their clicks.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_events_recipient_at "
            "ON events (campaign_id, ledger_id, event, at)"
        )
    )
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_recipient"))  # a prefix of the new one


def _v4(conn: Connection) -> None:
    # Hosted sign-ups: courses and sessions as the service sees them, registrations, invites.
    metadata.create_all(conn, tables=list(SIGNUP_TABLES))


def _v5(conn: Connection) -> None:
    # Single transactional messages (confirmations, sign-in links) with their own ledger.
    metadata.create_all(conn, tables=[notices])


def _v6(conn: Connection) -> None:
    # The team pages: sign-in links, sessions, rate-limit counters, the audit log.
    metadata.create_all(conn, tables=list(TEAM_TABLES))


def _v7(conn: Connection) -> None:
    # People: attendance, its corrections, QI level history; and on each course the level
    # completing it gives and the privacy notice its pages link to. A store created at v4 or
    # later by this code already has the two columns (create_all reads the table as it is now).
    have = {c["name"] for c in sa.inspect(conn).get_columns("signup_courses")}
    for column in ("leads_to", "privacy_url"):
        if column not in have:
            kind = signup_courses.c[column].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE signup_courses ADD COLUMN {column} {kind}"))
    metadata.create_all(conn, tables=list(PEOPLE_TABLES))


def _v8(conn: Connection) -> None:
    # Evidence that settled an uncertain recipient (send/ledger_evidence.py). A v1 database
    # created by this version already has the columns (create_all uses today's schema).
    have = {col["name"] for col in sa.inspect(conn).get_columns("ledger")}
    if "evidence" not in have:
        conn.execute(sa.text("ALTER TABLE ledger ADD COLUMN evidence VARCHAR(60)"))
    if "evidence_at" not in have:
        conn.execute(sa.text("ALTER TABLE ledger ADD COLUMN evidence_at TIMESTAMP"))
    # Events of one batch: the Email Activity check and the batch's evidence counts.
    conn.execute(
        sa.text("CREATE INDEX IF NOT EXISTS ix_events_send ON events (send_id, ledger_id)")
    )


def _v9(conn: Connection) -> None:
    # ix_ledger_campaign_state (campaign, state) and ix_ledger_segment_state (campaign,
    # segment, state, id) become one index, (campaign, state, segment, id), which answers
    # what each of them did. A send moves every row's state twice (claimed, then answered):
    # with two indexes holding the state that was four index updates per row instead of
    # two, a third of the ledger's time in a 100,000 send.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_ledger_state_segment "
            "ON ledger (campaign_id, state, segment, id)"
        )
    )
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_ledger_campaign_state"))
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_ledger_segment_state"))


def _v10(conn: Connection) -> None:
    # A sign-up counts the confirmed places of the date chosen and, on the waiting list, the
    # people ahead; it numbers itself after the course's last arrival. With (course, status,
    # queue_seq) each count read every registration of the course in that state from the
    # table, and the last number scanned all of them: at 5,000 registrations on one course
    # about 6 ms a submit. (course, status, session, queue_seq) answers the counts from the
    # index, bounded by the places; (course, queue_seq) finds the last number directly and
    # keeps listing a course in arrival order.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_registrations_course_status_session "
            "ON registrations (signup_course_id, status, session_id, queue_seq)"
        )
    )
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_registrations_course_seq "
            "ON registrations (signup_course_id, queue_seq)"
        )
    )
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_registrations_course_status_seq"))


def _notice_of(raw: str) -> int | None:
    try:
        value = json.loads(raw).get("notice_id")
    except (ValueError, AttributeError):
        return None
    text = str(value)
    return int(text) if text.isdigit() and len(text) < 18 else None


def _v11(conn: Connection) -> None:
    # forget deletes a person's single emails (notices); before it keyed their webhook
    # events (a874476) it left those events their raw payload, which named the deleted
    # notice, so purge kept their plain dedupe keys (a hash that confirms a guessed
    # address) for the whole retention period. Only forget deletes notices: an event naming
    # one that is gone is an erased person's, and loses its payload, user agent and IP hash
    # as forget now does; purge then retires its key once SendGrid can no longer repeat it.
    known = set(conn.execute(sa.select(notices.c.id)).scalars())
    rows = conn.execute(
        sa.select(events.c.id, events.c.raw).where(
            events.c.source == "webhook",
            events.c.ledger_id.is_(None),
            events.c.raw.contains('"notice_id":"'),
        )
    ).all()
    orphans = [r.id for r in rows if (n := _notice_of(r.raw)) is not None and n not in known]
    for start in range(0, len(orphans), 500):
        conn.execute(
            events.update()
            .where(events.c.id.in_(orphans[start : start + 500]))
            .values(raw=None, user_agent=None, ip_hash=None)
        )


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial schema", _v1),
    (2, "indexes: events by recipient and type, ledger by segment and state", _v2),
    (3, "index: events by recipient, type and time", _v3),
    (4, "sign-ups: courses, sessions, registrations, open sign-up invites", _v4),
    (5, "notices: transactional messages sent exactly once", _v5),
    (6, "team pages: sign-in links, sessions, rate limits, audit log", _v6),
    (7, "people: attendance, QI level history; courses' leads_to and privacy notice", _v7),
    (8, "ledger: evidence that settled an uncertain recipient; events by send id", _v8),
    (9, "ledger: one index by campaign, state and segment instead of two", _v9),
    (10, "registrations: counted by course, state and date; numbered in arrival order", _v10),
    (11, "events: an erased person's single emails' events lose the payload forget left", _v11),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(engine: Engine) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("meta"):
            found = 0
        else:
            row = conn.execute(
                sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).first()
            found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the database is at schema version {found}, newer than this "
                f"equip-mailer ({SCHEMA_VERSION})",
                hint="Upgrade equip-mailer.",
            )
        for version, _name, step in MIGRATIONS:
            if version > found:
                step(conn)
                if found == 0 and version == 1:
                    conn.execute(meta.insert().values(key="schema_version", value=str(version)))
                else:
                    conn.execute(
                        meta.update()
                        .where(meta.c.key == "schema_version")
                        .values(value=str(version))
                    )
    return found
