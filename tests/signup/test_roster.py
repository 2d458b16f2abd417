"""Rosters as the trainer and the ``attendance`` import read them: the contract's columns in
order, confirmed by name then the waiting list in queue order, attend_all people on every
day, QI levels from the list, formulas defused, and an A4 sign-in sheet that prints."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from support.signup_data import NOW, hosted_campaign, seed_readers

from equip_mailer import store
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses
from equip_mailer.signup.roster import (
    ROSTER_COLUMNS,
    UnknownSession,
    campaign_rosters,
    css_string,
    roster_stem,
    write_roster,
)

MADE = dt.datetime(2019, 6, 26, 17, 30)


@pytest.fixture
def engine(db_url):
    engine = store.open_store(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def campaign(engine, tmp_path, demo_path):
    """Basics: 2 afternoons of 2 places; In Action: 3 days, 1 place; 3 list readers."""
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(2, 2), action_places=1)
    seed_readers(engine, campaign, 3)
    with engine.begin() as conn:
        register_courses(conn, campaign)
    return campaign


def course(engine, campaign, course_id):
    with engine.connect() as conn:
        return find_course(conn, campaign.id, course_id)


def sign_up(engine, course_row, email, name, session_id=None, at=NOW, **extra):
    with store.immediate(engine) as conn:
        return reg.register(
            conn, course_row, reg.Applicant(email=email, name=name, **extra), session_id, at
        ).registration


def rosters(engine, campaign, session=None):
    with engine.connect() as conn:
        return campaign_rosters(conn, campaign.id, session)


def test_confirmed_by_name_then_the_waiting_list_in_order(engine, campaign):
    basics = course(engine, campaign, "equip-basics")
    june = basics.sessions[0].id
    later = [NOW + dt.timedelta(minutes=i) for i in range(4)]
    zoe = sign_up(engine, basics.id, "zoe@nhs.example", "Zoe Adams", june, later[0])
    amy = sign_up(engine, basics.id, "reader1@NHS.example", "Amy Brown", june, later[1],
                  access_needs="Step-free access, please")  # fmt: skip
    sam = sign_up(engine, basics.id, "sam@nhs.example", "Sam Cole", june, later[2])
    ben = sign_up(engine, basics.id, "ben@nhs.example", "Ben Dale", june, later[3])
    gone = sign_up(engine, basics.id, "gone@nhs.example", "Al Gone", basics.sessions[1].id)
    with store.immediate(engine) as conn:
        reg.cancel(conn, gone.id, NOW)

    by_key = {r.stem: r for r in rosters(engine, campaign)}
    june_roster = by_key["equip-basics_2019-06-27"]
    assert [p.name for p in june_roster.confirmed] == ["Amy Brown", "Zoe Adams"]
    assert [(p.name, p.waiting_position) for p in june_roster.waiting] == [
        ("Sam Cole", 1),
        ("Ben Dale", 2),
    ]
    assert june_roster.filled == "2 of 2" and june_roster.free.waiting == 2
    assert by_key["equip-basics_2019-09-10"].confirmed == ()  # the cancelled one is left out
    records = june_roster.records()
    assert [tuple(r) for r in records] == [ROSTER_COLUMNS] * 4
    amy_row = records[0]
    assert amy_row == {
        "Course": "EQUIP Basics",
        "Session": "2019-06-27",
        "Starts": "2019-06-27 13:00",  # London summer time (UTC 12:00 in the store)
        "Name": "Amy Brown",
        "Email": "reader1@NHS.example",
        "Practice": "",
        "Role": "",
        "QI level": "none",  # from the list, found by address (no ledger id given)
        "Access needs": "Step-free access, please",
        "Status": "confirmed",
        "Signed up": "2019-05-01 10:01",
        "Registration": amy.id,
        "Attended": "",
    }
    assert [r["Registration"] for r in records] == [amy.id, zoe.id, sam.id, ben.id]
    assert [r["QI level"] for r in records[1:]] == ["", "", ""]  # not on the list


def test_one_registration_of_an_attend_all_course_is_on_every_day(engine, campaign):
    action = course(engine, campaign, "equip-in-action")
    ids = seed_readers(engine, campaign, 0)  # nothing new; the readers are there already
    assert ids == []
    first = sign_up(engine, action.id, "reader0@nhs.example", "Reader Number0", ledger_id=1)
    second = sign_up(engine, action.id, "reader2@nhs.example", "Reader Number2")
    days = [r for r in rosters(engine, campaign) if r.course.course_id == "equip-in-action"]
    assert [(r.session.key, r.day) for r in days] == [
        ("2019-06-13", "Day 1 of 3"),
        ("2019-07-09", "Day 2 of 3"),
        ("2019-09-17", "Day 3 of 3"),
    ]
    for day in days:
        assert [p.registration for p in day.confirmed] == [first.id]
        assert [p.registration for p in day.waiting] == [second.id]
        assert day.filled == "1 of 1"
    assert days[0].confirmed[0].qi_level == "none"  # by its ledger row


def test_a_session_is_chosen_by_date_or_course_and_date(engine, campaign):
    assert [r.stem for r in rosters(engine, campaign, "2019-09-10")] == ["equip-basics_2019-09-10"]
    assert [r.stem for r in rosters(engine, campaign, "equip-in-action@2019-06-13")] == [
        "equip-in-action_2019-06-13"
    ]
    with pytest.raises(UnknownSession) as exc:
        rosters(engine, campaign, "2019-06-28")
    assert "equip-basics@2019-06-27" in exc.value.known
    # The Data masterclass is booked on ELFT's page and nobody was imported: no roster.
    assert not [r for r in rosters(engine, campaign) if r.course.course_id == "data-masterclass"]


def test_files_keep_the_contract_and_defuse_formulas(engine, campaign, tmp_path):
    basics = course(engine, campaign, "equip-basics")
    made = sign_up(
        engine,
        basics.id,
        "eve@nhs.example",
        '=HYPERLINK("http://x")',
        basics.sessions[0].id,
        practice="+Example Surgery",
        role="Nurse",
    )
    (june,) = rosters(engine, campaign, "equip-basics@2019-06-27")
    files = write_roster(june, tmp_path / "out", MADE)
    assert [p.name for p in files] == [
        "equip-basics_2019-06-27.xlsx",
        "equip-basics_2019-06-27.csv",
        "equip-basics_2019-06-27_sign-in.html",
    ]
    raw = files.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with open(files.csv, newline="", encoding="utf-8-sig") as fh:
        (row,) = list(csv.DictReader(fh))
    assert list(row) == list(ROSTER_COLUMNS)
    assert row["Name"] == '\'=HYPERLINK("http://x")' and row["Practice"] == "'+Example Surgery"
    assert (row["Registration"], row["Status"], row["Attended"]) == (str(made.id), "confirmed", "")

    book = load_workbook(files.xlsx)
    assert book.sheetnames == ["Roster", "About"]
    sheet = book["Roster"]
    header, values = list(sheet.iter_rows(values_only=True))
    assert header == ROSTER_COLUMNS
    cells = dict(zip(header, values, strict=True))
    assert cells["Name"] == '\'=HYPERLINK("http://x")'
    assert cells["Registration"] == made.id and cells["Session"] == dt.datetime(2019, 6, 27)
    assert cells["Attended"] is None
    assert sheet.data_validations.dataValidation[0].formula1 == '"yes,no"'
    about = dict(book["About"].iter_rows(values_only=True))
    assert (about["Places"], about["Confirmed"], about["Waiting"]) == (2, 1, 0)
    assert about["Venue"] == "Example Community Centre, London E1"


def test_the_workbook_dates_are_dates_a_trainer_can_sort_and_filter_in_excel(
    engine, campaign, tmp_path
):
    """Found in the audit: Session, Starts and Signed up were text in the workbook, so
    Excel's filter offered no "before/after" and the column could not be reformatted. They
    are now dates in the contract's spelling (London time), and ``attendance`` still reads
    the workbook back: a date cell arrives as "2019-06-27 00:00:00"."""
    from equip_mailer.people.sheets import read_sheet

    basics = course(engine, campaign, "equip-basics")
    made = sign_up(engine, basics.id, "ann@nhs.example", "Ann Lee", basics.sessions[0].id)
    (june,) = rosters(engine, campaign, "equip-basics@2019-06-27")
    files = write_roster(june, tmp_path, MADE)

    sheet = load_workbook(files.xlsx)["Roster"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert row["Session"].is_date and row["Session"].number_format == "yyyy-mm-dd"
    assert row["Session"].value == dt.datetime(2019, 6, 27)
    assert row["Starts"].is_date and row["Starts"].number_format == "yyyy-mm-dd hh:mm"
    assert row["Starts"].value == dt.datetime(2019, 6, 27, 13, 0)  # BST, as in the CSV
    assert row["Signed up"].is_date
    assert row["Signed up"].value == NOW.replace(hour=10)  # 09:00 UTC is 10:00 in May
    about = {r[0].value: r[1] for r in load_workbook(files.xlsx)["About"].iter_rows()}
    assert about["Ends"].is_date and about["Ends"].value == dt.datetime(2019, 6, 27, 17, 0)

    book = load_workbook(files.xlsx)
    book["Roster"].cell(row=2, column=header.index("Attended") + 1, value="yes")
    book.save(files.xlsx)
    (mark,), rejects, _blank = read_sheet(files.xlsx, "roster.xlsx")
    assert rejects == [] and (mark.session_key, mark.registration_id) == ("2019-06-27", made.id)


def test_the_qi_level_column_shows_a_level_raised_since_the_list_was_sent(
    engine, campaign, tmp_path
):
    """Found in the audit: after ``attendance`` raised a reader from none to basics, the
    roster files still said "none" (the list's level when the campaign was sent) while the
    team's roster page said basics. The files show the level now, as the page does; a level
    recorded lower than the list's changes nothing."""
    from equip_mailer.people.levels import set_level

    basics = course(engine, campaign, "equip-basics")
    june = basics.sessions[0].id
    with engine.connect() as conn:  # two readers of the list, at level none
        ids = conn.execute(
            sa.select(store.ledger.c.id, store.ledger.c.email).where(
                store.ledger.c.campaign_id == campaign.id
            )
        ).all()
    for ledger_id, address in ids[:2]:
        with store.immediate(engine) as conn:
            reg.register(
                conn,
                basics.id,
                reg.Applicant(email=address, name=address, ledger_id=ledger_id),
                june,
                NOW,
            )
    with engine.begin() as conn:
        set_level(conn, ids[0].email.upper(), "basics", "did EQUIP Basics in 2018", "test", NOW)
        set_level(conn, ids[1].email, "none", "checked with them", "test", NOW)
    (june_roster,) = rosters(engine, campaign, "equip-basics@2019-06-27")

    levels = {r["Email"]: r["QI level"] for r in june_roster.records()}
    assert levels == {ids[0].email: "basics", ids[1].email: "none"}
    files = write_roster(june_roster, tmp_path, MADE)
    with open(files.csv, encoding="utf-8-sig", newline="") as fh:
        assert {r["Email"]: r["QI level"] for r in csv.DictReader(fh)} == levels


def test_the_sign_in_sheet_keeps_access_needs_off_the_page_that_goes_round(
    engine, campaign, tmp_path
):
    basics = course(engine, campaign, "equip-basics")
    june = basics.sessions[0].id
    sign_up(
        engine, basics.id, "a@nhs.example", "Ann <b>Bold</b>", june, access_needs="Hearing loop"
    )
    sign_up(engine, basics.id, "b@nhs.example", "Bob Ray", june, practice="Tower View Surgery")
    sign_up(engine, basics.id, "c@nhs.example", "Cat Waits", june)
    (roster,) = rosters(engine, campaign, "equip-basics@2019-06-27")
    page = write_roster(roster, tmp_path, MADE).sign_in.read_text(encoding="utf-8")
    assert '<html lang="en-GB">' in page
    sheet, trainer = page.split('<section class="trainer"', 1)
    assert "Ann &lt;b&gt;Bold&lt;/b&gt;" in sheet and "<b>Bold" not in page
    assert "Bob Ray" in sheet and "Tower View Surgery" in sheet
    assert "Hearing loop" not in sheet and "Hearing loop" in trainer
    assert "Cat Waits" not in sheet and "Cat Waits" in trainer  # waiting: the trainer's page
    assert "a@nhs.example" not in page  # no addresses on paper
    assert "Places: 2 of 2, 1 waiting" in sheet
    assert "Thursday 27 June 2019, 13:00 to 17:00" in sheet
    assert "size: A4 portrait" in page and "counter(pages)" in page
    assert "src=" not in page and "<link" not in page and "<script" not in page


def test_names_in_the_page_footer_cannot_break_out_of_the_style_sheet():
    quoted = css_string('Basics "</style><script>x()</script>')
    assert quoted.startswith('"') and quoted.endswith('"')
    assert '"' not in quoted[1:-1] and "<" not in quoted and ">" not in quoted
    assert roster_stem("equip basics/2", "2019-06-27") == "equip-basics-2_2019-06-27"


def test_names_with_an_accented_first_letter_sort_with_their_letter(engine, campaign):
    """Found in the audit: the roster sorted by code point, so Özlem and Émile came after
    Zara, at the end of a list a trainer runs down alphabetically."""
    basics = course(engine, campaign, "equip-basics")
    june = basics.sessions[0].id
    sign_up(engine, basics.id, "zara@nhs.example", "Zara Ali", june)
    sign_up(engine, basics.id, "ozlem@nhs.example", "Özlem Kaya", june)
    september = basics.sessions[1].id
    sign_up(engine, basics.id, "emile@nhs.example", "Émile Zola", september)
    sign_up(engine, basics.id, "fred@nhs.example", "fred Ash", september)
    by_key = {r.stem: r for r in rosters(engine, campaign)}
    assert [p.name for p in by_key["equip-basics_2019-06-27"].confirmed] == [
        "Özlem Kaya",
        "Zara Ali",
    ]
    assert [p.name for p in by_key["equip-basics_2019-09-10"].confirmed] == [
        "Émile Zola",
        "fred Ash",
    ]


def test_a_control_character_in_a_sign_up_does_not_stop_the_workbook(engine, campaign, tmp_path):
    """Found in the audit: a booking export whose access needs held a stray control
    character (\\x02: kept by the import, as by any path that is not the sign-up form) made
    `equip-mailer roster` crash for the whole campaign with openpyxl's IllegalCharacterError,
    and running it again could not help. The workbook leaves out what XML 1.0 cannot hold,
    as the report's does."""
    basics = course(engine, campaign, "equip-basics")
    sign_up(
        engine,
        basics.id,
        "ctl@nhs.example",
        "Con\x01trol Char",
        basics.sessions[0].id,
        access_needs="needs\x02 a ramp\x1b",
    )
    (june,) = rosters(engine, campaign, "equip-basics@2019-06-27")
    files = write_roster(june, tmp_path, MADE)
    header, values = list(load_workbook(files.xlsx)["Roster"].iter_rows(values_only=True))
    cells = dict(zip(header, values, strict=True))
    assert (cells["Name"], cells["Access needs"]) == ("Control Char", "needs a ramp")
