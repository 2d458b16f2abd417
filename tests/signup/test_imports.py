"""Sign-ups made elsewhere: an Eventbrite CSV and a Microsoft Forms workbook read into
registrations, matched to the campaign's readers by address in any case, people from outside
the lists imported and listed, cancelled tickets left out, and a second import changing
nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from support.booking_exports import Booking, eventbrite_csv, forms_xlsx
from support.signup_data import NOW, hosted_campaign, seed_readers

from equip_mailer import store
from equip_mailer.signup.catalogue import find_course, register_courses
from equip_mailer.signup.imports import import_rows, parse_date, parse_rows, read_export


@pytest.fixture
def engine(db_url):
    engine = store.open_store(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def campaign(engine, tmp_path, demo_path):
    campaign = hosted_campaign(tmp_path, demo_path)
    seed_readers(engine, campaign, 3, segment="project-leads")  # reader0..2@nhs.example
    with engine.begin() as conn:
        register_courses(conn, campaign)
    return campaign


def course(engine, campaign, course_id):
    with engine.connect() as conn:
        return find_course(conn, campaign.id, course_id)


def run_import(engine, campaign, course_info, path):
    table, source = read_export(path)
    rows, problems = parse_rows(table, course_info)
    assert problems == []
    with store.immediate(engine) as conn:
        return import_rows(conn, campaign.id, course_info, source, rows, NOW)


def registrations(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(store.registrations).order_by(store.registrations.c.id)).all()


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2019-10-15", dt.date(2019, 10, 15)),
        ("2019-10-15 09:00:00", dt.date(2019, 10, 15)),
        ("15/10/2019", dt.date(2019, 10, 15)),  # day first, as in the UK
        ("15.10.19", dt.date(2019, 10, 15)),
        ("Tuesday 15 October 2019", dt.date(2019, 10, 15)),
        ("Oct 15, 2019 9:00 AM", dt.date(2019, 10, 15)),
        ("27 June 2019 (afternoon)", dt.date(2019, 6, 27)),
        ("Free place", None),
        ("31/02/2019", None),
        ("", None),
    ],
)
def test_dates_as_booking_tools_and_people_write_them(text, day):
    assert parse_date(text) == day


def test_an_eventbrite_export_matches_readers_in_any_case_and_keeps_the_others(
    engine, campaign, tmp_path
):
    masterclass = course(engine, campaign, "data-masterclass")
    path = eventbrite_csv(
        tmp_path / "attendees.csv",
        [
            Booking("Reader", "Zero", "READER0@nhs.example", "Elm Tree Surgery", "GP",
                    access_needs="Hearing loop"),
            Booking("Out", "Sider", "outsider@example.net", role="Citizen"),
            Booking("Reader", "One", "reader1@nhs.example", status="Refunded"),
            Booking("Reader", "Zero", "reader0@NHS.EXAMPLE"),  # a second ticket
        ],
    )  # fmt: skip
    result = run_import(engine, campaign, masterclass, path)
    assert result.source == "Eventbrite attendee export"
    assert [(r.where.rsplit(":", 1)[1], r.outcome, r.on_list) for r in result.rows] == [
        ("2", "new", True),
        ("3", "new", False),
        ("4", "cancelled", True),
        ("5", "duplicate", True),
    ]
    assert [r.email for r in result.not_on_list] == ["outsider@example.net"]
    made = registrations(engine)
    assert [(r.email, r.status, r.source) for r in made] == [
        ("READER0@nhs.example", "confirmed", "import"),
        ("outsider@example.net", "confirmed", "import"),
    ]
    reader0, outsider = made
    assert reader0.ledger_id is not None and outsider.ledger_id is None
    assert (reader0.name, reader0.practice, reader0.role, reader0.access_needs) == (
        "Reader Zero",
        "Elm Tree Surgery",
        "GP",
        "Hearing loop",
    )
    assert reader0.session_id == masterclass.sessions[0].id

    again = run_import(engine, campaign, masterclass, path)
    assert [r.outcome for r in again.rows] == ["existing", "existing", "cancelled", "duplicate"]
    assert registrations(engine) == made  # the same file twice changes nothing


def test_control_characters_in_an_export_are_not_stored(engine, campaign, tmp_path):
    """A booking tool's export can carry stray controls (\x02 pasted from a PDF, an escape
    from a terminal); stored, they would travel into mails, calendars and every roster."""
    masterclass = course(engine, campaign, "data-masterclass")
    path = eventbrite_csv(
        tmp_path / "attendees.csv",
        [
            Booking("Re\x02ader", "Zero\x1b", "reader0@nhs.example", "Elm\x7f Tree Surgery",
                    "G\x85P", access_needs="Hearing\x01 loop"),
        ],
    )  # fmt: skip
    run_import(engine, campaign, masterclass, path)
    (made,) = registrations(engine)
    assert (made.name, made.practice, made.role, made.access_needs) == (
        "Reader Zero",
        "Elm Tree Surgery",
        "G P",
        "Hearing loop",
    )


def test_a_forms_workbook_finds_the_address_among_anonymous_columns(engine, campaign, tmp_path):
    basics = course(engine, campaign, "equip-basics")  # two afternoons: the date decides
    path = forms_xlsx(
        tmp_path / "responses.xlsx",
        [
            Booking("Reader", "Two", "reader2@nhs.example", date="Tuesday 10 September 2019"),
            Booking("New", "Person", "new.person@nhs.example", "Example Surgery", "Nurse",
                    date="27/06/2019", access_needs="Step-free access"),
        ],
    )  # fmt: skip
    result = run_import(engine, campaign, basics, path)
    assert result.source == "Microsoft Forms responses"
    assert [r.outcome for r in result.rows] == ["new", "new"]
    assert result.rows[0].where.endswith("responses.xlsx:Form1!row 2")
    two, new = registrations(engine)
    assert (two.name, two.session_id) == ("Reader Two", basics.sessions[1].id)
    assert (new.name, new.practice, new.session_id) == (
        "New Person",
        "Example Surgery",
        basics.sessions[0].id,
    )


def test_someone_who_signed_up_here_is_left_as_they_were(engine, campaign, tmp_path):
    from equip_mailer.signup.registration import Applicant, register

    basics = course(engine, campaign, "equip-basics")
    with store.immediate(engine) as conn:
        mine = register(
            conn, basics.id, Applicant("reader1@nhs.example", "Reader One"), basics.sessions[0].id,
            NOW,
        ).registration  # fmt: skip
    path = forms_xlsx(tmp_path / "r.xlsx", [Booking("R", "One", "Reader1@nhs.example",
                                                    date="10/09/2019")])  # fmt: skip
    (row,) = run_import(engine, campaign, basics, path).rows
    assert (row.outcome, row.registration) == ("existing", mine.id)
    assert row.detail == "confirmed, from the email's sign-up link"
    (kept,) = registrations(engine)
    assert (kept.session_id, kept.source) == (basics.sessions[0].id, "list")


def test_rows_that_cannot_be_read_are_all_named(engine, campaign, tmp_path):
    basics = course(engine, campaign, "equip-basics")
    path = forms_xlsx(
        tmp_path / "bad.xlsx",
        [
            Booking("A", "Fine", "a@nhs.example", date="27/06/2019"),
            Booking("B", "Bad", "b@@nhs.example", date="27/06/2019"),
            Booking("C", "Wrong", "c@nhs.example", date="28/06/2019"),
            Booking("D", "None", "d@nhs.example", date=""),
        ],
    )
    table, _ = read_export(path)
    _rows, problems = parse_rows(table, basics)
    assert problems == [
        f'{path}:Form1!row 3: email "b@@nhs.example" is not a valid address',
        f'{path}:Form1!row 4: date "28/06/2019" is not one of the course\'s dates '
        "(27 Jun 2019, 10 Sep 2019)",
        f"{path}:Form1!row 5: no date is given, and the course has several",
    ]
