"""A small, hand-countable store state for report tests, written straight into the tables.

Sending and tracking are built elsewhere at the same time, so the report tests do not run
them: they insert the rows those parts would leave behind. The campaign id is the demo
spec's, so the spec can supply names. ``expect`` compares a report table with rows counted
by hand from the state below.

The state (times UTC, first send 2019-04-22 10:00):

  id segment           practice       role              state   events
   1 getting-started   Practice A     GP                sent    delivered, open; clicks basics@06-27 10:30, 10:45 (repeat), about 04-23 09:10
   2 getting-started   Practice A     Nurse             sent    delivered; MACHINE basics@06-27 10:00:30 (after-delivery); basics@09-10 14:20
   3 getting-started   Practice B     Receptionist      sent    delivered; MACHINE basics@06-27 10:00:40 (after-delivery) only
   4 getting-started   Practice B     GP                sent    delivered
   5 getting-started   Practice C     Practice manager  sent    BOUNCE
   6 ready-for-action  Practice A     GP                sent    delivered, open; in-action 04-24 08:05, 08:06 (repeat)
   7 ready-for-action  Practice B     Nurse             sent    delivered; MACHINE in-action 04-22 10:01 (ua:mimecast)
   8 ready-for-action  Practice C     Pharmacist        sent    delivered
   9 ready-for-action  Practice C     GP                failed  (never sent)
  10 project-leads     Practice A     Practice manager  sent    delivered; masterclass 04-30 12:00
  11 project-leads     Practice B     GP                sent    delivered; masterclass 05-02 16:00, in-action 05-02 16:05
  12 project-leads     Practice C     Nurse             sent    delivered

Plus one click with ledger id 0 (a test send), which no figure may count, and recipient 4
unsubscribing on 04-23.

Sign-ups (SIGNUPS below; places per session in SIGNUP_COURSES):

  EQUIP Basics 27 Jun (2 places): 1 confirmed, someone from the open page confirmed,
                                  2 waiting; 10 Sep (30 places): 3 cancelled
  EQUIP in Action (attend all 3 days, 16 places): 6 confirmed
  Data masterclass (booked elsewhere): 11 and someone not on the lists, both imported
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from equip_mailer import store
from equip_mailer.report.model import Table

CAMPAIGN = "2019-04-equip-training"
SUBJECT = "EQUIP QI training: three ways to start or grow your QI journey"
T0 = dt.datetime(2019, 4, 22, 10, 0)

LINKS = [  # id, key, course_id, session
    (1, "equip-basics@2019-06-27", "equip-basics", "2019-06-27"),
    (2, "equip-basics@2019-09-10", "equip-basics", "2019-09-10"),
    (3, "equip-in-action", "equip-in-action", None),
    (4, "data-masterclass", "data-masterclass", None),
    (5, "about", None, None),
]

RECIPIENTS = [  # id, segment, practice, role, state
    (1, "getting-started", "Practice A", "GP", "sent"),
    (2, "getting-started", "Practice A", "Nurse", "sent"),
    (3, "getting-started", "Practice B", "Receptionist", "sent"),
    (4, "getting-started", "Practice B", "GP", "sent"),
    (5, "getting-started", "Practice C", "Practice manager", "sent"),
    (6, "ready-for-action", "Practice A", "GP", "sent"),
    (7, "ready-for-action", "Practice B", "Nurse", "sent"),
    (8, "ready-for-action", "Practice C", "Pharmacist", "sent"),
    (9, "ready-for-action", "Practice C", "GP", "failed"),
    (10, "project-leads", "Practice A", "Practice manager", "sent"),
    (11, "project-leads", "Practice B", "GP", "sent"),
    (12, "project-leads", "Practice C", "Nurse", "sent"),
]


def at(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2019, month, day, hour, minute, second)


# course id, name, hosted, schedule, [(session key, starts UTC, places)]
SIGNUP_COURSES = [
    (
        "equip-basics",
        "EQUIP Basics",
        True,
        "choose_one",
        [("2019-06-27", dt.datetime(2019, 6, 27, 12), 2), ("2019-09-10", dt.datetime(2019, 9, 10, 12), 30)],
    ),
    (
        "equip-in-action",
        "EQUIP in Action",
        True,
        "attend_all",
        [
            ("2019-06-13", dt.datetime(2019, 6, 13, 8), 16),
            ("2019-07-09", dt.datetime(2019, 7, 9, 8), 16),
            ("2019-09-17", dt.datetime(2019, 9, 17, 8), 16),
        ],
    ),
    ("data-masterclass", "Data masterclass", False, "choose_one",
     [("2019-10-15", dt.datetime(2019, 10, 15, 8), None)]),
]  # fmt: skip

SIGNUPS = [  # ledger id (None: not on the lists), course, session key, status, source
    (1, "equip-basics", "2019-06-27", "confirmed", "list"),
    (None, "equip-basics", "2019-06-27", "confirmed", "open"),
    (2, "equip-basics", "2019-06-27", "waiting", "list"),
    (3, "equip-basics", "2019-09-10", "cancelled", "list"),
    (6, "equip-in-action", None, "confirmed", "list"),
    (11, "data-masterclass", "2019-10-15", "confirmed", "import"),
    (None, "data-masterclass", "2019-10-15", "confirmed", "import"),
]


def insert_signups(conn, campaign_id: str = CAMPAIGN) -> None:
    """The courses, sessions and registrations above, as sign-ups and imports leave them."""
    sessions: dict[tuple[str, str | None], tuple[int, int | None]] = {}
    for course_id, name, hosted, schedule, dates in SIGNUP_COURSES:
        course_row = conn.execute(
            store.signup_courses.insert().values(
                campaign_id=campaign_id, course_id=course_id, name=name, schedule=schedule,
                hosted=hosted, waiting_list=True, sender_email="equip@example.org",
                active=True, created_at=T0, updated_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip
        sessions[(course_id, None)] = (course_row, None)
        for position, (key, starts, places) in enumerate(dates):
            session_row = conn.execute(
                store.signup_sessions.insert().values(
                    signup_course_id=course_row, session_key=key, position=position,
                    starts_at=starts, ends_at=starts + dt.timedelta(hours=4), places=places,
                    active=True, revision=0, created_at=T0, updated_at=T0,
                )
            ).inserted_primary_key[0]  # fmt: skip
            sessions[(course_id, key)] = (course_row, session_row)
    for i, (ledger_id, course_id, key, status, source) in enumerate(SIGNUPS, start=1):
        course_row, session_row = sessions[(course_id, key)]
        conn.execute(
            store.registrations.insert().values(
                signup_course_id=course_row, session_id=session_row, campaign_id=campaign_id,
                course_id=course_id, ledger_id=ledger_id, email=f"signup{i}@example.org",
                email_key=f"signup{i}@example.org", name=f"Sign-up {i}", status=status,
                source=source, queue_seq=i, revision=0, created_at=T0, updated_at=T0,
            )
        )  # fmt: skip


def _events() -> list[tuple]:
    """(event, at, ledger_id, link_id, machine_reason or None)."""
    rows = []
    for rid in (1, 2, 3, 4, 6, 7, 8, 10, 11, 12):
        rows.append(("delivered", T0 + dt.timedelta(minutes=1), rid, None, None))
    rows += [
        ("bounce", T0 + dt.timedelta(minutes=2), 5, None, None),
        ("open", at(4, 22, 10, 20), 1, None, None),
        ("open", at(4, 24, 8, 0), 6, None, None),
        ("click", at(4, 22, 10, 30), 1, 1, None),
        ("click", at(4, 22, 10, 45), 1, 1, None),
        ("click", at(4, 23, 9, 10), 1, 5, None),
        ("click", at(4, 22, 10, 0, 30), 2, 1, "after-delivery"),
        ("click", at(4, 22, 14, 20), 2, 2, None),
        ("click", at(4, 22, 10, 0, 40), 3, 1, "after-delivery"),
        ("click", at(4, 24, 8, 5), 6, 3, None),
        ("click", at(4, 24, 8, 6), 6, 3, None),
        ("click", at(4, 22, 10, 1), 7, 3, "ua:mimecast"),
        ("click", at(4, 30, 12, 0), 10, 4, None),
        ("click", at(5, 2, 16, 0), 11, 4, None),
        ("click", at(5, 2, 16, 5), 11, 3, None),
        ("click", at(4, 22, 11, 0), 0, 1, None),  # test send: ledger id 0
        ("unsubscribe", at(4, 23, 12, 0), 4, None, None),
    ]
    return rows


def create_campaign(conn, campaign_id: str = CAMPAIGN, subject: str = SUBJECT) -> None:
    conn.execute(
        store.campaigns.insert().values(
            id=campaign_id, subject=subject, created_at=T0, updated_at=T0
        )
    )


def insert_links(conn, campaign_id: str = CAMPAIGN, id_offset: int = 0) -> None:
    conn.execute(
        store.links.insert(),
        [
            {
                "id": lid + id_offset,
                "campaign_id": campaign_id,
                "key": key,
                "course_id": course,
                "session": session,
                "label": key,
                "url": f"https://equip.example.org/{key}",
            }
            for lid, key, course, session in LINKS
        ],
    )


def insert_recipients(
    conn,
    recipients=RECIPIENTS,
    campaign_id: str = CAMPAIGN,
    sent_at: dt.datetime | None = T0,
    id_offset: int = 0,
) -> None:
    """Ledger rows and one batch per segment, as a finished send leaves them."""
    segments = sorted({r[1] for r in recipients})
    batch_ids = {}
    for seg in segments:
        size = sum(1 for r in recipients if r[1] == seg)
        result = conn.execute(
            store.batches.insert().values(
                campaign_id=campaign_id,
                segment=seg,
                send_id=f"{campaign_id}-{seg}",
                backend="outbox",
                state="sent" if sent_at else "in_flight",
                size=size,
                created_at=sent_at or T0,
                finished_at=sent_at,
            )
        )
        batch_ids[seg] = result.inserted_primary_key[0]
    conn.execute(
        store.ledger.insert(),
        [
            {
                "id": rid + id_offset,
                "campaign_id": campaign_id,
                "email": f"person{rid + id_offset}@example.org",
                "email_key": f"person{rid + id_offset}@example.org",
                "first_name": f"Person{rid}",
                "last_name": "Example",
                "practice": practice,
                "role": role,
                "qi_level": "none",
                "segment": seg,
                "state": state,
                "batch_id": batch_ids[seg],
                "attempts": 1,
                "created_at": T0,
                "updated_at": T0,
                "sent_at": sent_at if state == "sent" else None,
            }
            for rid, seg, practice, role, state in recipients
        ],
    )


_counter = itertools.count(1)


def insert_events(
    conn,
    rows,
    campaign_id: str = CAMPAIGN,
    source: str = "tracker",
    segments: dict[int, str] | None = None,
) -> None:
    """Events as the tracker (clicks) and the SendGrid webhook (the rest) record them."""
    segments = segments or {r[0]: r[1] for r in RECIPIENTS}
    conn.execute(
        store.events.insert(),
        [
            {
                "dedupe_key": f"k{next(_counter)}",
                "event": event,
                "at": when,
                "source": source if event == "click" else "webhook",
                "campaign_id": campaign_id,
                "ledger_id": rid,
                "segment": segments.get(rid),
                "link_id": link,
                "machine": reason is not None,
                "machine_reason": reason,
                "received_at": when,
            }
            for event, when, rid, link, reason in rows
        ],
    )


def build_hand_computed_store(url: str) -> sa.Engine:
    """The whole state above in a fresh store at ``url``."""
    engine = store.open_store(url)
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn)
        insert_events(conn, _events())
        insert_signups(conn)
    return engine


def report_store_without_clicks(url, recipients=RECIPIENTS, delivered=True):
    """The campaign sent to ``recipients`` (delivered events for each, unless told not),
    and nobody has clicked yet."""
    engine = store.open_store(url)
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn, recipients)
        if delivered:
            insert_events(
                conn,
                [
                    ("delivered", T0 + dt.timedelta(minutes=1), r[0], None, None)
                    for r in recipients
                    if r[4] == "sent"
                ],
            )
    return engine


def expect(table: Table, rows: list[list]) -> None:
    """The table's rows equal ``rows`` (rates compared to 1e-9, NaN equal to NaN)."""
    got = table.frame.astype("object").where(table.frame.notna(), None).values.tolist()
    assert len(got) == len(rows), f"{table.key}: {got}"
    for got_row, want_row in zip(got, rows, strict=True):
        assert len(got_row) == len(want_row), f"{table.key}: {got_row}"
        for value, want in zip(got_row, want_row, strict=True):
            if isinstance(want, float) and np.isnan(want):
                assert value is None or np.isnan(value), f"{table.key}: {got_row}"
            elif isinstance(want, float):
                assert value == pytest.approx(want, abs=1e-9), f"{table.key}: {got_row}"
            else:
                assert value == want, f"{table.key}: {got_row}"


def read_csv(path: Path) -> list[list[str]]:
    """A report CSV's rows as Excel would read them; it must start with a byte-order mark."""
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), "CSV needs a BOM for Excel"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))
