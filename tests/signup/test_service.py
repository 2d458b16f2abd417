"""``service.sync``, which ``send`` runs after the spec was edited: people signed up for a
date whose time or venue moved are mailed the new details with a calendar that replaces the
old entry; people on a date dropped from the spec are reported for the team; and running it
again mails nobody twice."""

from __future__ import annotations

import base64
import datetime as dt
import json

import icalendar
import pytest
import sqlalchemy as sa
from support.signup_data import NOW, hosted_campaign

from equip_mailer import store
from equip_mailer.signup import service
from equip_mailer.signup.catalogue import find_course, register_courses
from equip_mailer.signup.notify import MailLinks, Stranded
from equip_mailer.signup.registration import Applicant

JUNE = '{date: 2019-06-27, start: "13:00"'
SEPTEMBER = (
    '      - {date: 2019-09-10, start: "13:00", end: "17:00", '
    'venue: "Example Community Centre, London E1", places: 3}\n'
)
ACTION_DAY_2 = '{date: 2019-07-09, start: "9:00", end: "17:00", venue: "Example Training Rooms'


@pytest.fixture
def signed_up(db_url, tmp_path, demo_path):
    """Basics: Ann in June, Bob waiting in June (one place), Cat in September; In Action
    (every date): Dan."""
    engine = store.open_store(db_url)
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(1, 3), action_places=2)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
        action = find_course(conn, campaign.id, "equip-in-action")
    w = service.Writer(engine, MailLinks("https://equip.example.org", b"k" * 32))
    june, september = basics.sessions[0].id, basics.sessions[1].id
    for name, course, session in (
        ("Ann", basics, june),
        ("Bob", basics, june),
        ("Cat", basics, september),
        ("Dan", action, None),
    ):
        applicant = Applicant(email=f"{name.lower()}@nhs.example", name=f"{name} Example")
        service.sign_up(w, course.id, applicant, session, NOW)
    yield engine, w
    engine.dispose()


def notices(engine, kind: str) -> dict[str, dict]:
    """The queued mails of one kind, by address: subject, text and the calendar (if any)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.notices).where(store.notices.c.kind == kind)).all()
    out = {}
    for row in rows:
        cal = None
        for a in json.loads(row.attachments or "[]"):
            cal = icalendar.Calendar.from_ical(base64.b64decode(a["data"]))
        out[row.email] = {"subject": row.subject, "text": row.text, "calendar": cal}
    return out


def events(cal: icalendar.Calendar) -> list[tuple[str, str, int, str, str]]:
    """(UID, status, SEQUENCE, London start, location) of each event."""
    return [
        (
            str(ev["UID"]),
            str(ev["STATUS"]),
            int(ev["SEQUENCE"]),
            ev.decoded("DTSTART").strftime("%Y-%m-%d %H:%M %Z"),
            str(ev.get("LOCATION")),
        )
        for ev in cal.walk("VEVENT")
    ]


def test_a_new_time_or_venue_is_mailed_to_the_people_of_that_date(signed_up, tmp_path, demo_path):
    engine, w = signed_up
    before = notices(engine, "signup-confirmed")
    moved = hosted_campaign(
        tmp_path,
        demo_path,
        basics_places=(1, 3),
        action_places=2,
        extra=(
            (JUNE, '{date: 2019-06-27, start: "14:00"'),
            (ACTION_DAY_2, ACTION_DAY_2.replace("Training Rooms", "Town Hall")),
        ),
    )

    synced = service.sync(w, moved, NOW)

    assert synced.rescheduled == 3 and synced.stranded == [] and synced.promoted == ()
    changed = notices(engine, "signup-changed")
    assert sorted(changed) == ["ann@nhs.example", "bob@nhs.example", "dan@nhs.example"]
    ann = changed["ann@nhs.example"]
    assert ann["subject"] == "Changed: EQUIP Basics, Thursday 27 June"
    assert "Your place is kept." in ann["text"]
    assert "Thursday 27 June 2019, 14:00\u201317:00" in ann["text"]
    ((uid, status, seq, start, _),) = events(ann["calendar"])
    ((old_uid, _, old_seq, _, _),) = events(before["ann@nhs.example"]["calendar"])
    assert (uid, status, start) == (old_uid, "CONFIRMED", "2019-06-27 14:00 BST")
    assert seq > old_seq  # replaces the entry the confirmation made
    bob = changed["bob@nhs.example"]  # waiting: the new time, no calendar
    assert "You are still on the waiting list: number 1." in bob["text"]
    assert bob["calendar"] is None
    dan = events(changed["dan@nhs.example"]["calendar"])  # every date of the course
    assert [e[4] for e in dan] == [
        "Example Training Rooms, London E1",
        "Example Town Hall, London E1",
        "Example Training Rooms, London E1",
    ]
    assert "cat@nhs.example" not in changed  # September did not move

    again = service.sync(w, moved, NOW)
    assert again.rescheduled == 0
    assert len(notices(engine, "signup-changed")) == 3


def test_people_on_a_dropped_date_are_reported_not_mailed(signed_up, tmp_path, demo_path):
    engine, w = signed_up
    without_september = hosted_campaign(
        tmp_path, demo_path, basics_places=(1, 3), action_places=2, extra=((SEPTEMBER, ""),)
    )

    synced = service.sync(w, without_september, NOW)

    assert synced.stranded == [Stranded("EQUIP Basics", "2019-09-10", 1)]
    assert synced.rescheduled == 0 and notices(engine, "signup-changed") == {}


def test_a_dropped_day_of_a_course_attended_on_every_date_is_cancelled_in_the_calendar(
    signed_up, tmp_path, demo_path
):
    engine, w = signed_up
    last_day = (
        '      - {date: 2019-09-17, start: "9:00", end: "17:00", '
        'venue: "Example Training Rooms, London E1", places: 2}\n'
    )
    two_days = hosted_campaign(
        tmp_path, demo_path, basics_places=(1, 3), action_places=2, extra=((last_day, ""),)
    )

    synced = service.sync(w, two_days, NOW)

    assert synced.rescheduled == 1
    dan = notices(engine, "signup-changed")["dan@nhs.example"]
    assert "17 September" not in dan["text"]
    assert [(e[1], e[3][:10]) for e in events(dan["calendar"])] == [
        ("CONFIRMED", "2019-06-13"),
        ("CONFIRMED", "2019-07-09"),
        ("CANCELLED", "2019-09-17"),
    ]


def test_a_date_already_over_is_history_not_news(signed_up, tmp_path, demo_path):
    """Found in review: a trainer correcting a past afternoon's time before `attendance`
    mailed everyone on it "The details have changed", and someone erased since (their place
    kept as an anonymous row, no address) was queued a mail too. Only dates still to come
    are news; an attend-all course is mailed when one of them changed."""
    from equip_mailer.people.forget import forget

    engine, w = signed_up
    july = dt.datetime(2019, 7, 1, 9, 0)  # after 27 June, before In Action's 9 July
    forget(engine, "ann@nhs.example", b"k" * 32, outbox=tmp_path / "outbox", now=july)
    june_corrected = hosted_campaign(
        tmp_path, demo_path, basics_places=(1, 3), action_places=2,
        extra=((JUNE, '{date: 2019-06-27, start: "14:00"'),),
    )  # fmt: skip

    synced = service.sync(w, june_corrected, july)

    assert synced.rescheduled == 0 and notices(engine, "signup-changed") == {}
    day_2_moved = hosted_campaign(
        tmp_path, demo_path, basics_places=(1, 3), action_places=2,
        extra=(
            (JUNE, '{date: 2019-06-27, start: "14:00"'),
            (ACTION_DAY_2, ACTION_DAY_2.replace("Training Rooms", "Town Hall")),
        ),
    )  # fmt: skip
    assert service.sync(w, day_2_moved, july).rescheduled == 1
    assert sorted(notices(engine, "signup-changed")) == ["dan@nhs.example"]
