"""The courses as the service sees them: copied from the spec into the store, London times
kept right across the clock change, and a changed spec updating rows in place."""

from __future__ import annotations

import datetime as dt

import pytest
from support.signup_data import hosted_campaign

from equip_mailer import store
from equip_mailer.signup.catalogue import find_course, register_courses, register_new_courses


@pytest.fixture
def engine(sqlite_url):
    engine = store.open_store(sqlite_url)
    yield engine
    engine.dispose()


def test_courses_and_sessions_are_stored_with_utc_times(engine, tmp_path, demo_path):
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(20, None))
    with engine.begin() as conn:
        ids = register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
        masterclass = find_course(conn, campaign.id, "data-masterclass")
    assert set(ids) == {"equip-basics", "equip-in-action", "data-masterclass"}
    assert basics.hosted and basics.waiting_list and basics.schedule == "choose_one"
    assert basics.sender_email == "equip@example.org"
    june, september = basics.sessions
    assert (june.places, september.places) == (20, None)
    assert june.starts_at == dt.datetime(2019, 6, 27, 12, 0)  # 13:00 BST
    assert june.starts_local.strftime("%H:%M %Z") == "13:00 BST"
    # A menu of dates is offered until its last date starts (each date until its own start);
    # a course attended on every date closes when its first starts.
    assert basics.closes_at == september.starts_at
    assert basics.is_open(june.starts_at + dt.timedelta(days=30))
    in_action = find_course_of(engine, campaign, "equip-in-action")
    assert in_action.closes_at == in_action.sessions[0].starts_at
    assert not in_action.is_open(in_action.sessions[0].starts_at)
    assert masterclass.sessions[0].starts_at == dt.datetime(2019, 10, 15, 8, 0)  # 09:00 BST
    assert not masterclass.hosted and masterclass.sign_up_url.startswith("https://")


def find_course_of(engine, campaign, course_id):
    with engine.connect() as conn:
        return find_course(conn, campaign.id, course_id)


def test_a_changed_spec_updates_in_place(engine, tmp_path, demo_path):
    campaign = hosted_campaign(tmp_path, demo_path)
    moved = hosted_campaign(
        tmp_path,
        demo_path,
        basics_places=(25, 20),
        extra=(('{date: 2019-09-10, start: "13:00"', '{date: 2019-11-05, start: "13:00"'),),
    )
    with engine.begin() as conn:
        first = register_courses(conn, campaign)
        again = register_courses(conn, moved)
        basics = find_course(conn, campaign.id, "equip-basics")
    assert first == again
    assert [(s.key, s.places) for s in basics.sessions] == [("2019-06-27", 25), ("2019-11-05", 20)]
    assert basics.sessions[1].starts_at == dt.datetime(2019, 11, 5, 13, 0)  # 13:00 GMT
    assert basics.sessions[0].revision == 0  # same time and place: calendars stay as they are


def test_a_test_send_writes_only_the_courses_the_store_lacks(engine, tmp_path, demo_path):
    """``register_new_courses`` (what a test send runs): a course added to the spec since
    the last send is written, so the test mail's link leads to its page; a known course
    keeps its stored details (a time being tried out is not copied, nobody is told) and
    stays active."""
    campaign = hosted_campaign(tmp_path, demo_path)
    first_two = campaign.model_copy(update={"courses": campaign.courses[:2]})
    with engine.begin() as conn:
        register_courses(conn, first_two)
        before = find_course(conn, campaign.id, "equip-basics").sessions[0]
    moved = hosted_campaign(
        tmp_path,
        demo_path,
        extra=(('{date: 2019-06-27, start: "13:00"', '{date: 2019-06-27, start: "14:00"'),),
    )

    with engine.begin() as conn:
        written = register_new_courses(conn, moved)
        basics = find_course(conn, campaign.id, "equip-basics")
        third = find_course(conn, campaign.id, campaign.courses[2].id)

    assert written == [campaign.courses[2].id]
    assert third is not None and third.active and third.sessions
    assert basics.active and basics.sessions[0] == before  # not the 14:00 being tried
    with engine.begin() as conn:
        assert register_new_courses(conn, moved) == []  # nothing new the second time
