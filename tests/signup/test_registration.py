"""Who gets a place: once per course, never oversold, a waiting list in arrival order, and a
cancellation that promotes the first person waiting; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from support.signup_data import NOW, hosted_campaign

from equip_mailer import store
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


@pytest.fixture
def engine(db_url):
    engine = store.open_store(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def courses(engine, tmp_path, demo_path):
    """Basics: 2 afternoons of 3 places each; In Action: 3 days, 2 places."""
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(3, 3), action_places=2)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        return {c: find_course(conn, campaign.id, c) for c in ("equip-basics", "equip-in-action")}


def person(i: int, **extra) -> reg.Applicant:
    return reg.Applicant(email=f"Person{i}@NHS.example", name=f"Person {i}", **extra)


def sign_up(engine, course, i, session=None, now=NOW):
    with store.immediate(engine) as conn:
        return reg.register(conn, course.id, person(i), session, now)


def test_places_then_the_waiting_list_in_order(engine, courses):
    basics = courses["equip-basics"]
    june = basics.sessions[0]
    outcomes = [sign_up(engine, basics, i, june.id) for i in range(5)]
    assert [o.registration.status for o in outcomes] == ["confirmed"] * 3 + ["waiting"] * 2
    with engine.connect() as conn:
        assert [reg.waiting_position(conn, o.registration) for o in outcomes[3:]] == [1, 2]
        left = reg.availability(conn, basics)
    assert (left[june.id].left, left[june.id].waiting) == (0, 2)
    assert left[basics.sessions[1].id].left == 3  # the other afternoon is untouched


def test_a_second_submit_shows_the_existing_registration(engine, courses):
    basics = courses["equip-basics"]
    first = sign_up(engine, basics, 1, basics.sessions[0].id)
    again = sign_up(engine, basics, 1, basics.sessions[1].id)  # other date, other case of address
    assert first.created and not again.created
    assert again.registration == first.registration
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.registrations)).scalar() == 1
        )


def test_cancelling_promotes_the_first_person_waiting(engine, courses):
    action = courses["equip-in-action"]  # attend_all: one place covers all three days
    made = [sign_up(engine, action, i).registration for i in range(4)]
    assert [r.status for r in made] == ["confirmed", "confirmed", "waiting", "waiting"]
    with store.immediate(engine) as conn:
        change = reg.cancel(conn, made[0].id, NOW)
    assert change.cancelled.status == "cancelled"
    assert [r.id for r in change.promoted] == [made[2].id]
    assert change.promoted[0].status == "confirmed" and change.promoted[0].revision == 1
    with store.immediate(engine) as conn:
        assert reg.cancel(conn, made[0].id, NOW) == reg.Change(cancelled=None, promoted=())
        assert reg.cancel(conn, made[3].id, NOW).promoted == ()  # a waiting person frees nothing


def test_the_team_gives_a_place_out_of_turn_even_when_full(engine, courses):
    basics = courses["equip-basics"]
    june = basics.sessions[0]
    outcomes = [sign_up(engine, basics, i, june.id) for i in range(5)]
    second_waiting = outcomes[4].registration
    with store.immediate(engine) as conn:
        given = reg.give_place(conn, second_waiting.id, NOW)
    assert given is not None and given.status == "confirmed"
    assert given.revision == second_waiting.revision + 1  # its mail gets a key of its own
    with engine.connect() as conn:
        left = reg.availability(conn, basics)[june.id]
        assert reg.waiting_position(conn, outcomes[3].registration) == 1
    assert (left.confirmed, left.places, left.waiting) == (4, 3, 1)
    with store.immediate(engine) as conn:  # not waiting any more: nothing to give
        assert reg.give_place(conn, second_waiting.id, NOW) is None
        assert reg.give_place(conn, outcomes[0].registration.id, NOW) is None
        with pytest.raises(reg.Refused):
            reg.give_place(conn, 999_999, NOW)


def test_signing_up_again_after_cancelling_joins_the_end_of_the_queue(engine, courses):
    action = courses["equip-in-action"]
    first = sign_up(engine, action, 1).registration
    sign_up(engine, action, 2)
    with store.immediate(engine) as conn:
        reg.cancel(conn, first.id, NOW)
    sign_up(engine, action, 3)  # takes the freed place
    back = sign_up(engine, action, 1)
    assert back.created and back.registration.id == first.id
    assert back.registration.status == "waiting" and back.registration.queue_seq == 4


def test_closed_full_and_past_dates_are_refused(engine, courses, tmp_path, demo_path):
    basics = courses["equip-basics"]
    june, september = basics.sessions
    with pytest.raises(reg.Refused) as started:
        sign_up(engine, basics, 1, june.id, now=june.starts_at)  # 13:00 BST
    assert started.value.reason == "session"
    # a menu of dates stays open for its later date (it closes when its last date starts)
    later = sign_up(engine, basics, 1, september.id, now=june.starts_at)
    assert later.registration.status == "confirmed"
    with pytest.raises(reg.Refused) as closed:
        sign_up(engine, basics, 2, september.id, now=september.starts_at)
    assert closed.value.reason == "closed"
    with pytest.raises(reg.Refused) as no_date:
        sign_up(engine, basics, 3, None)
    assert no_date.value.reason == "session"


def test_no_waiting_list_means_full(engine, tmp_path, demo_path):
    campaign = hosted_campaign(
        tmp_path,
        demo_path,
        action_places=1,
        extra=(
            ("    schedule: attend_all\n", "    schedule: attend_all\n    waiting_list: false\n"),
        ),
    )
    with engine.begin() as conn:
        register_courses(conn, campaign)
        action = find_course(conn, campaign.id, "equip-in-action")
    assert not action.waiting_list
    sign_up(engine, action, 1)
    with pytest.raises(reg.Refused) as full:
        sign_up(engine, action, 2)
    assert full.value.reason == "full"


def test_more_places_in_the_spec_promote_people_waiting(engine, courses, tmp_path, demo_path):
    action = courses["equip-in-action"]
    made = [sign_up(engine, action, i).registration for i in range(5)]
    bigger = hosted_campaign(tmp_path, demo_path, basics_places=(3, 3), action_places=4)
    with store.immediate(engine) as conn:
        register_courses(conn, bigger)
        promoted = reg.fill_free_places(conn, action.id, NOW)
    assert [r.id for r in promoted] == [made[2].id, made[3].id]


def test_two_hundred_at_once_for_twenty_places(engine, tmp_path, demo_path):
    """The race: 200 threads, each its own transaction, for a 20-place afternoon."""
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(20, 20))
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
    june = basics.sessions[0].id
    start = threading.Barrier(200)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            start.wait()
            sign_up(engine, basics, i, june)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        rows = reg.course_registrations(conn, basics.id)
    assert [r.status for r in rows] == ["confirmed"] * 20 + ["waiting"] * 180
    assert [r.queue_seq for r in rows] == list(range(1, 201))  # arrival order, no gaps


def test_places_booked_elsewhere_are_recorded_once(engine, tmp_path, demo_path):
    """What ``signups import`` uses for the external Data masterclass."""
    campaign = hosted_campaign(tmp_path, demo_path)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        masterclass = find_course(conn, campaign.id, "data-masterclass")
    assert not masterclass.hosted
    applicant = person(7, source="import", practice="Example Practice")
    with store.immediate(engine) as conn:
        first = reg.record_external(
            conn, masterclass.id, applicant, masterclass.sessions[0].id, NOW
        )
        again = reg.record_external(
            conn, masterclass.id, applicant, masterclass.sessions[0].id, NOW
        )
    assert first.created and first.registration.status == "confirmed"
    assert not again.created and again.registration == first.registration
    with pytest.raises(reg.Refused):  # not taken here: no sign-ups through the pages
        sign_up(engine, masterclass, 8, masterclass.sessions[0].id)


def test_a_sign_up_reads_registrations_through_indexes_bounded_by_the_places(
    tmp_path, demo_path, sqlite_url
):
    """A sign-up counts the confirmed places of the date chosen, then (on the waiting list)
    the people ahead of it, and numbers itself after the course's last arrival. Each comes
    from an index alone: reading every registration of the course from the table cost about
    6 ms a submit once 5,000 people were waiting. On SQLite: the plans of the very
    statements a sign-up and its mail ran, as the driver saw them."""
    from equip_mailer.signup import service
    from equip_mailer.signup.notify import MailLinks

    engine = store.open_store(sqlite_url)
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(3, 3))
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
    june = basics.sessions[0].id
    for i in range(5):
        sign_up(engine, basics, i, june)
    ran: list[str] = []
    links = MailLinks("https://equip.example.org", b"k" * 32)
    with store.immediate(engine) as conn:
        driver = conn.connection.driver_connection
        driver.set_trace_callback(ran.append)
        try:
            outcome = service.sign_up_in(conn, links, basics.id, person(9), june, NOW)
        finally:
            driver.set_trace_callback(None)
        plans = {
            sql: [step[3] for step in driver.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in ran
            if " registrations" in sql and sql.lstrip().upper().startswith("SELECT")
        }
    engine.dispose()
    assert outcome.registration.status == "waiting"  # so the position was counted too
    counts = {sql: plan for sql, plan in plans.items() if "count(" in sql.lower()}
    assert len(counts) == 2, ran  # the date's confirmed places, the people ahead
    for sql, plan in plans.items():
        assert not any(step.startswith("SCAN") or "TEMP B-TREE" in step for step in plan), (
            sql,
            plan,
        )
    for plan in counts.values():
        assert any("COVERING INDEX ix_registrations_course_status_session" in s for s in plan)
    last = next(plan for sql, plan in plans.items() if "max(" in sql.lower())
    assert any("COVERING INDEX ix_registrations_course_seq" in step for step in last), last


def test_a_sign_up_hands_back_the_course_as_read_under_the_lock(engine, courses):
    """``register`` returns the course it read under the lock, with every session, so the
    mail (``notify.registered``) need not read it again: exactly what a fresh read gives,
    a date dropped from the spec included (its calendar says so), and without it the
    active dates the sign-up was decided on."""
    from equip_mailer.signup.catalogue import load_course

    action = courses["equip-in-action"]  # attend_all: the calendar holds every date
    with engine.begin() as conn:  # the spec dropped its last day after it was sent
        conn.execute(
            store.signup_sessions.update()
            .where(store.signup_sessions.c.id == action.sessions[-1].id)
            .values(active=False)
        )
    with store.immediate(engine) as conn:
        outcome = reg.register(conn, action.id, person(1), None, NOW)
        every = load_course(conn, action.id, include_inactive=True)
        active = load_course(conn, action.id)
    assert outcome.created and outcome.course == every
    assert [s.active for s in every.sessions] == [True, True, False]
    assert outcome.course.without_inactive() == active
    assert len(active.sessions) == 2
    again = sign_up(engine, action, 1)
    assert not again.created and again.course is None  # nothing to mail
