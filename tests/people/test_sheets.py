"""`equip-mailer attendance`: a completed sign-in sheet in, attendance and QI levels out;
every bad row named and nothing half-imported."""

from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner
from support.sign_in_sheets import SPEC, write_roster
from support.signup_data import NOW

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


def run(*args):
    return CliRunner().invoke(main, list(args))


def counts(url):
    engine = store.open_store(url)
    with engine.connect() as conn:
        found = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (store.attendance, store.attendance_log, store.person_levels)
        }
    engine.dispose()
    return found


def test_a_roster_sheet_records_attendance_and_moves_people(signed_up, tmp_path):
    basics, people = signed_up["basics"], signed_up["people"]
    sheet = write_roster(
        tmp_path / "basics-06-27.xlsx", basics, basics.sessions[0], people, ["✓", "absent", ""]
    )

    first = run("attendance", SPEC, str(sheet))
    again = run("attendance", SPEC, str(sheet))

    assert first.exit_code == 0, first.output
    assert "Recorded 2 new mark(s), 0 correction(s); 0 row(s) were recorded already" in first.output
    assert "1 row(s) left blank (not marked)" in first.output
    assert "1 person completed EQUIP Basics." in first.output
    assert "1 person now at basics after EQUIP Basics, 2019-06-27." in first.output
    assert again.exit_code == 0, again.output
    assert "Recorded 0 new mark(s), 0 correction(s); 2 row(s) were recorded already" in again.output
    assert counts(signed_up["engine_url"]) == {
        "attendance": 2,
        "attendance_log": 2,
        "person_levels": 1,
    }
    check = run("check", SPEC, "--allow-past")
    assert "1 person now at basics after EQUIP Basics, 2019-06-27" in check.output


def test_a_corrected_sheet_is_a_correction(signed_up, tmp_path):
    basics, people = signed_up["basics"], signed_up["people"]
    june = basics.sessions[0]
    run(
        "attendance", SPEC, str(write_roster(tmp_path / "a.csv", basics, june, people, ["yes"] * 3))
    )

    fixed = run(
        "attendance",
        SPEC,
        str(write_roster(tmp_path / "b.csv", basics, june, people, ["yes", "no", "yes"])),
    )

    assert fixed.exit_code == 0, fixed.output
    assert "Recorded 0 new mark(s), 1 correction(s); 2 row(s) were recorded already" in fixed.output
    assert "corrected: EQUIP Basics 2019-06-27: absent (was attended)" in fixed.output
    assert "1 level raise(s) taken back after a correction." in fixed.output


def test_a_plain_list_of_addresses_per_session(signed_up, tmp_path):
    sheet = tmp_path / "came.csv"
    sheet.write_text(
        "email,session\n"
        "VIK.FERNANDEZ1@nhs.example,27/06/2019\n"
        "walk.in@example.org,2019-06-27\n"
        "bob@nhs.example,2019-06-13\n"
        "bob@nhs.example,2019-07-09\n"
        "bob@nhs.example,2019-09-17\n",
        encoding="utf-8",
    )
    result = run("attendance", SPEC, str(sheet))
    assert result.exit_code == 0, result.output
    assert "Recorded 5 new mark(s)" in result.output
    print(result.output)
    assert (
        f"4 row(s) for people with no place on the course (recorded as walk-ins): {sheet}:3, "
        f"{sheet}:4, {sheet}:5, {sheet}:6" in result.output
    )
    assert "1 person completed EQUIP in Action." in result.output
    assert "1 person now at project after EQUIP in Action, 2019-09-17." in result.output
    assert "2 people now at basics after EQUIP Basics, 2019-06-27." in result.output


def test_bad_rows_are_all_named_and_nothing_is_recorded(signed_up, tmp_path):
    basics, people = signed_up["basics"], signed_up["people"]
    sheet = write_roster(
        tmp_path / "bad.csv", basics, basics.sessions[0], people, ["yes", "maybe", "yes"]
    )
    text = sheet.read_text(encoding="utf-8-sig").splitlines()
    text[3] = text[3].replace(f",{people[2][0].id},", ",99999,")
    text.append("EQUIP Basics,2019-06-28,,Ann,ann@nhs.example,,,,,,,,yes")
    sheet.write_text("\n".join(text) + "\n", encoding="utf-8")

    result = run("attendance", SPEC, str(sheet))

    assert result.exit_code == 1
    assert "3 rows cannot be recorded, so nothing was imported:" in result.output
    assert f'{sheet}:3: Attended "maybe" is not yes or no' in result.output
    assert (
        f"{sheet}:4: Registration 99999 is not a sign-up of 2019-04-equip-training" in result.output
    )
    assert f"{sheet}:5: EQUIP Basics has no session on 2019-06-28" in result.output
    assert counts(signed_up["engine_url"])["attendance"] == 0


def test_a_sheet_without_a_session_column_is_refused(signed_up, tmp_path):
    sheet = tmp_path / "names.csv"
    sheet.write_text("email\nann@nhs.example\n", encoding="utf-8")
    result = run("attendance", SPEC, str(sheet))
    assert result.exit_code == 1
    assert "has no Session column" in result.output


def test_a_sheet_that_is_not_there_is_named_with_what_to_give(signed_up, tmp_path):
    """Found in the walkthrough: the hint said to check the path under 'lists:' in the
    campaign file, which has nothing to do with the sheet given on the command line."""
    missing = tmp_path / "nope.csv"
    result = run("attendance", SPEC, str(missing))
    assert result.exit_code == 1
    assert f"Error: {missing}: no such file" in result.output
    assert "lists:" not in result.output
    assert "Hint: Give the roster file (CSV or XLSX) with its Attended column" in " ".join(
        result.output.split()
    )


def test_a_course_name_the_campaign_does_not_have_is_named_as_the_problem(signed_up, tmp_path):
    """Found in the audit: a typo in the Course column ("EQUIP Bascis") was reported as "no
    course has a session on 2019-06-27", a date EQUIP Basics does meet on, which sends the
    trainer looking at the wrong cell."""
    sheet = tmp_path / "typo.csv"
    sheet.write_text(
        "Course,Session,Email,Attended\n"
        "EQUIP Bascis,2019-06-27,ann@nhs.example,yes\n"
        "EQUIP Basics,2019-06-13,bob@nhs.example,yes\n",
        encoding="utf-8",
    )

    result = run("attendance", SPEC, str(sheet))

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert (
        f'{sheet}:2: Course "EQUIP Bascis" is not a course of 2019-04-equip-training '
        "(its courses: EQUIP Basics, EQUIP in Action, Data masterclass)" in output
    )
    assert f"{sheet}:3: EQUIP Basics has no session on 2019-06-13" in output
    assert counts(signed_up["engine_url"])["attendance"] == 0


def test_two_rows_that_mark_one_person_both_ways_are_refused(signed_up, tmp_path):
    """Found in the audit: a roster with Bob's row copied, "yes" on one and "no" on the
    other, was recorded row by row: attended, then "corrected" to absent by the same sheet,
    so Bob silently lost the session. Rows that agree are recorded once."""
    basics, people = signed_up["basics"], signed_up["people"]
    sheet = write_roster(
        tmp_path / "twice.csv", basics, basics.sessions[0], people, ["yes", "yes", "no"]
    )
    lines = sheet.read_text(encoding="utf-8-sig").splitlines()
    lines.append(lines[1].rsplit(",", 1)[0] + ",no")  # the first person again, absent
    lines.append(lines[2])  # the second again, the same mark
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run("attendance", SPEC, str(sheet))

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "1 row cannot be recorded, so nothing was imported:" in output
    assert (
        f"{sheet}:5: marks the same person absent on 2019-06-27, but {sheet}:2 marks them "
        "attended: keep one of the two rows" in output
    )
    assert counts(signed_up["engine_url"])["attendance"] == 0

    lines.pop(-2)  # the contradicting row removed: the repeated one is harmless
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fixed = run("attendance", SPEC, str(sheet))
    assert fixed.exit_code == 0, fixed.output
    assert "0 correction(s)" in fixed.output
    assert counts(signed_up["engine_url"])["attendance"] == 3


def test_a_time_moved_since_the_last_send_is_mailed_by_attendance_too(signed_up, tmp_path):
    """attendance copies the campaign's courses into the store (it needs their leads_to): a
    session still to come whose time was edited meanwhile is announced then, not absorbed
    unannounced. (A date already over is history: correcting it mails nobody.)"""
    from equip_mailer.compose.spec import load_campaign

    basics, people = signed_up["basics"], signed_up["people"]
    spec = signed_up["root"] / SPEC
    spec.write_text(  # the second afternoon moved to a year still to come, Zoe on it
        spec.read_text(encoding="utf-8").replace("2019-09-10", "2099-09-10"), encoding="utf-8"
    )
    engine = store.open_store(signed_up["engine_url"])
    with engine.begin() as conn:
        register_courses(conn, load_campaign(spec, allow_past=True))
        later = find_course(conn, basics.campaign_id, "equip-basics").sessions[1]
    with store.immediate(engine) as conn:
        zoe = reg.Applicant(email="zoe@nhs.example", name="Zoe Quill")
        reg.register(conn, basics.id, zoe, later.id, NOW)
    engine.dispose()
    spec.write_text(
        spec.read_text(encoding="utf-8")
        .replace('{date: 2099-09-10, start: "13:00"', '{date: 2099-09-10, start: "14:00"')
        .replace('{date: 2019-06-27, start: "13:00"', '{date: 2019-06-27, start: "13:30"'),
        encoding="utf-8",
    )
    sheet = write_roster(tmp_path / "a.csv", basics, basics.sessions[0], people, ["yes"] * 3)

    first = run("attendance", SPEC, str(sheet))
    again = run("attendance", SPEC, str(sheet))

    assert first.exit_code == 0, first.output
    assert "1 person signed up for dates whose time or venue changed was emailed" in " ".join(
        first.output.split()
    )
    (changed,) = (signed_up["root"] / "outbox" / "notices").glob("*-signup-changed.eml")
    assert "14:00" in changed.read_text(encoding="utf-8")  # Zoe's; June's three are not told
    assert again.exit_code == 0 and "was emailed" not in again.output  # told once


def test_a_forgotten_persons_row_is_not_recorded_again(signed_up, tmp_path):
    """Found in the audit: after `forget`, a sheet of addresses naming them recorded a
    walk-in under their plain address, and the completion a new level row. Their row is
    now left out and listed; the rest of the sheet is recorded."""
    forgot = run("forget", "walk.in@example.org", "--yes")
    assert forgot.exit_code == 0, forgot.output
    sheet = tmp_path / "came.csv"
    sheet.write_text(
        "email,session\nWalk.In@example.org,2019-06-27\nbob@nhs.example,2019-06-27\n",
        encoding="utf-8",
    )

    result = run("attendance", SPEC, str(sheet))

    assert result.exit_code == 0, result.output
    assert "Recorded 1 new mark(s)" in result.output
    out = " ".join(result.output.split())
    assert f"1 row(s) for people erased at their request, not recorded: {sheet}:2" in out
    engine = store.open_store(signed_up["engine_url"])
    with engine.connect() as conn:
        keys = conn.execute(sa.select(store.attendance.c.email_key)).scalars().all()
        levels = conn.execute(sa.select(store.person_levels.c.email_key)).scalars().all()
    engine.dispose()
    assert keys == ["bob@nhs.example"] and levels == ["bob@nhs.example"]


def test_a_row_by_registration_and_one_by_address_are_the_same_person(signed_up, tmp_path):
    """Found in review: the check above keyed a row matched by its Registration number and
    a row typed with the address alone apart, so the same person marked both ways passed
    and the later row 'corrected' the earlier."""
    import csv

    basics, people = signed_up["basics"], signed_up["people"]
    sheet = write_roster(tmp_path / "mixed.csv", basics, basics.sessions[0], people, ["yes"] * 3)
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    typed = dict(rows[0], Registration="", Attended="no")  # added by hand, no number
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, typed])

    result = run("attendance", SPEC, str(sheet))

    assert result.exit_code == 1, result.output
    assert f"{sheet}:5: marks the same person absent on 2019-06-27, but {sheet}:2" in " ".join(
        result.output.split()
    )
    assert counts(signed_up["engine_url"])["attendance"] == 0
