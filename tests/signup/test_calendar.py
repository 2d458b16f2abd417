"""Calendars read back with a real iCalendar parser: one event per session, London times right
on both sides of the clock change, stable UIDs and a growing SEQUENCE so a re-send updates."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from support.signup_data import hosted_campaign

from equip_mailer import store
from equip_mailer.signup import calendar
from equip_mailer.signup.catalogue import find_course, register_courses

# In 2019 the clocks went back on Sunday 27 October: 13:00 on the 24th is BST, on the 31st GMT.
ACROSS_THE_CHANGE = (
    ('{date: 2019-06-13, start: "9:00"', '{date: 2019-10-24, start: "13:00"'),
    ('{date: 2019-07-09, start: "9:00"', '{date: 2019-10-31, start: "13:00"'),
    ('{date: 2019-09-17, start: "9:00"', '{date: 2019-11-07, start: "13:00"'),
)


@pytest.fixture
def action(sqlite_url, tmp_path, demo_path):
    engine = store.open_store(sqlite_url)
    campaign = hosted_campaign(tmp_path, demo_path, extra=ACROSS_THE_CHANGE)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        course = find_course(conn, campaign.id, "equip-in-action")
    engine.dispose()
    return course


def entry(revision=0, cancelled=False) -> calendar.CalendarEntry:
    return calendar.CalendarEntry(
        registration_id=42,
        revision=revision,
        cancelled=cancelled,
        manage_url="https://equip.example.org/r/abc",
        uid_domain="example.org",
    )


def parse(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def test_one_event_per_session_in_london_time(action):
    data = calendar.calendar(action, action.sessions, entry(), dt.datetime(2019, 5, 1, 9))
    cal = parse(data)
    assert cal["METHOD"] == "PUBLISH" and cal["VERSION"] == "2.0"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    events = cal.walk("VEVENT")
    starts = [e.decoded("DTSTART") for e in events]
    assert [s.astimezone(dt.UTC).hour for s in starts] == [12, 13, 13]  # BST, then GMT
    assert all(s.hour == 13 and str(s.tzinfo) == "Europe/London" for s in starts)
    assert events[0]["SUMMARY"] == "EQUIP in Action (day 1 of 3)"
    assert events[0]["LOCATION"] == "Example Training Rooms, London E1"
    assert "https://equip.example.org/r/abc" in events[0]["DESCRIPTION"]


def test_a_resend_updates_rather_than_duplicates(action):
    first = parse(calendar.calendar(action, action.sessions, entry(0), dt.datetime(2019, 5, 1)))
    later = parse(calendar.calendar(action, action.sessions, entry(2), dt.datetime(2019, 5, 2)))
    gone = parse(
        calendar.calendar(action, action.sessions, entry(3, True), dt.datetime(2019, 5, 3))
    )
    uids = [[str(e["UID"]) for e in c.walk("VEVENT")] for c in (first, later, gone)]
    assert uids[0] == uids[1] == uids[2] and len(set(uids[0])) == 3
    assert [int(e["SEQUENCE"]) for e in later.walk("VEVENT")] == [2, 2, 2]
    assert {str(e["STATUS"]) for e in gone.walk("VEVENT")} == {"CANCELLED"}


def test_lines_are_folded_crlf_and_text_escaped():
    long = "A; very, long\\ venue name " * 8
    line = calendar.fold("LOCATION:" + calendar.escape_text(long))
    assert all(len(part.encode()) <= 75 for part in line.split("\r\n"))
    unfolded = line.replace("\r\n ", "")
    assert unfolded == "LOCATION:" + calendar.escape_text(long)
    assert "\\;" in unfolded and "\\," in unfolded and "\\\\" in unfolded
    accents = calendar.fold("SUMMARY:" + "é" * 60)  # never split inside a character
    assert "".join(accents.split("\r\n ")).encode("utf-8").decode("utf-8")


def test_a_chosen_afternoon_is_not_told_to_choose_one(sqlite_url, tmp_path, demo_path):
    """The confirmation mail stopped repeating "Choose one of the two afternoons" once a
    date was chosen; its calendar entry said it still. Attending every day still binds."""
    engine = store.open_store(sqlite_url)
    campaign = hosted_campaign(tmp_path, demo_path)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
        action = find_course(conn, campaign.id, "equip-in-action")
    engine.dispose()
    stamp = dt.datetime(2019, 5, 1, 9)
    afternoon = parse(calendar.calendar(basics, basics.sessions[:1], entry(), stamp))
    days = parse(calendar.calendar(action, action.sessions, entry(), stamp))
    (event,) = afternoon.walk("VEVENT")
    assert basics.attendance == "Choose one of the two afternoons."
    assert "Choose one" not in str(event["DESCRIPTION"])
    assert str(event["DESCRIPTION"]).startswith("Half-day training\n")
    for day in days.walk("VEVENT"):
        assert "you will need to attend all 3 days" in str(day["DESCRIPTION"])
