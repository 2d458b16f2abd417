"""Attendance as the roster page and the sign-in sheet record it: marking twice changes
nothing, corrections are kept, and completing a course raises the QI level it leads to."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from support.signup_data import NOW, hosted_campaign

from equip_mailer import store
from equip_mailer.people import levels
from equip_mailer.people.attendance import (
    AttendanceError,
    record_attendance,
    record_attendance_by_email,
)
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses

AFTER = dt.datetime(2019, 10, 1, 9, 0)  # every session of the demo is over


@pytest.fixture
def engine(db_url):
    engine = store.open_store(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def courses(engine, tmp_path, demo_path):
    campaign = hosted_campaign(tmp_path, demo_path)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        return {c: find_course(conn, campaign.id, c) for c in ("equip-basics", "equip-in-action")}


def signed_up(engine, course, email, session=None):
    with store.immediate(engine) as conn:
        applicant = reg.Applicant(email=email, name="Ann Example")
        return reg.register(conn, course.id, applicant, session, NOW).registration


def mark(engine, registration, session, attended, now=AFTER, source="roster row 2"):
    with engine.begin() as conn:
        return record_attendance(conn, registration.id, session.id, attended, source, "cli", now)


def test_completing_a_choose_one_course_raises_the_level_once(engine, courses):
    basics = courses["equip-basics"]
    june = basics.sessions[0]
    ann = signed_up(engine, basics, "Ann.Example@NHS.example", june.id)

    first = mark(engine, ann, june, True)
    again = mark(engine, ann, june, True)

    assert first.changed and first.completed and first.raised is not None
    assert (first.raised.level, first.raised.previous_level) == ("basics", None)
    assert first.raised.reason == "completed EQUIP Basics, 2019-06-27"
    assert first.raised.why == "after EQUIP Basics, 2019-06-27"
    assert not again.changed and again.raised is None
    with engine.connect() as conn:
        assert [c.level for c in levels.history(conn, "ann.example@nhs.example")] == ["basics"]
        log = conn.execute(sa.select(store.attendance_log)).all()
    assert len(log) == 1


def test_attend_all_completes_only_after_the_last_day(engine, courses):
    action = courses["equip-in-action"]
    bob = signed_up(engine, action, "bob@nhs.example")
    days = action.sessions
    changes = [mark(engine, bob, day, True) for day in days]
    assert [c.completed for c in changes] == [False, False, True]
    assert changes[-1].raised.level == "project"
    assert changes[-1].raised.effective_on == dt.date(2019, 9, 17)


def test_a_correction_is_recorded_and_takes_back_the_raise(engine, courses):
    basics = courses["equip-basics"]
    june = basics.sessions[0]
    ann = signed_up(engine, basics, "ann@nhs.example", june.id)
    mark(engine, ann, june, True)

    corrected = mark(engine, ann, june, False, source="corrected roster row 2")

    assert corrected.corrected and not corrected.completed
    assert corrected.withdrawn is not None and corrected.withdrawn.withdrawn_at is not None
    assert "absent from EQUIP Basics on 2019-06-27" in corrected.withdrawn.withdrawn_reason
    with engine.connect() as conn:
        assert levels.current(conn, "ann@nhs.example") is None
        log = conn.execute(
            sa.select(store.attendance_log.c.previous, store.attendance_log.c.attended).order_by(
                store.attendance_log.c.id
            )
        ).all()
    assert [tuple(r) for r in log] == [(None, True), (True, False)]
    # attending after all gives the level back
    assert mark(engine, ann, june, True).raised.level == "basics"


def test_training_never_lowers_a_level(engine, courses):
    basics = courses["equip-basics"]
    june = basics.sessions[0]
    ann = signed_up(engine, basics, "ann@nhs.example", june.id)
    with engine.begin() as conn:
        levels.set_level(conn, "ann@nhs.example", "project", "runs a QI project", "team", AFTER)
    change = mark(engine, ann, june, True)
    assert change.completed and change.raised is None
    with engine.connect() as conn:
        assert levels.current(conn, "ann@nhs.example").level == "project"


def test_a_walk_in_is_marked_by_address(engine, courses):
    basics = courses["equip-basics"]
    with engine.begin() as conn:
        change = record_attendance_by_email(
            conn, basics.sessions[1].id, "Walk.In@Example.org", True, "sheet row 3", "cli", AFTER
        )
        row = conn.execute(sa.select(store.attendance)).one()
    assert change.raised.level == "basics" and change.raised.effective_on == dt.date(2019, 9, 10)
    assert row.registration_id is None and row.email_key == "walk.in@example.org"


def test_nothing_is_recorded_for_a_session_to_come_or_another_course(engine, courses):
    basics, action = courses["equip-basics"], courses["equip-in-action"]
    ann = signed_up(engine, basics, "ann@nhs.example", basics.sessions[0].id)
    with pytest.raises(AttendanceError, match="has not started yet"):
        mark(engine, ann, basics.sessions[0], True, now=NOW)
    with pytest.raises(AttendanceError, match="another course"):
        mark(engine, ann, action.sessions[0], True)
    with pytest.raises(AttendanceError, match="no registration 999"):
        with engine.begin() as conn:
            record_attendance(conn, 999, basics.sessions[0].id, True, "x", None, AFTER)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.attendance)).scalar() == 0


def test_a_level_set_by_hand_needs_a_reason_and_a_real_level(engine):
    from equip_mailer.errors import EquipError

    with engine.begin() as conn:
        with pytest.raises(EquipError, match="needs a reason"):
            levels.set_level(conn, "ann@nhs.example", "basics", " ", "team", AFTER)
        with pytest.raises(EquipError, match="not a QI level"):
            levels.set_level(conn, "ann@nhs.example", "expert", "why", "team", AFTER)
