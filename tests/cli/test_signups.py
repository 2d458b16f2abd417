"""`equip-mailer signups import`, driven end to end over the two shipped example exports
(lists/imports/): the demo campaign is sent to the outbox, ELFT's Eventbrite attendees and
Forms responses for the Data masterclass are imported, listed and counted once, and the
roster shows them."""

from __future__ import annotations

import csv
import shutil

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.booking_exports import Booking, eventbrite_csv, forms_xlsx

from equip_mailer.cli import main

SPEC = "campaigns/2019-04-equip-training.yaml"
EVENTBRITE = "lists/imports/eventbrite-data-masterclass.csv"
FORMS = "lists/imports/forms-data-masterclass.xlsx"


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    output = result.output
    if output.startswith("Project "):  # which project and store: the command's first line
        output = output.partition("\n")[2]
    return result.exit_code, " ".join(output.split())  # unwrapped


@pytest.fixture(scope="module")
def sent_store(tmp_path_factory):
    """The demo project sent once to the outbox: a store copied by each test."""
    import os
    from pathlib import Path

    from support.link_secrets import LINK_SECRET

    root = Path(__file__).resolve().parents[2]
    folder = tmp_path_factory.mktemp("sent")
    for part in ("campaigns", "lists", "templates"):
        shutil.copytree(root / part, folder / part)
    old = os.getcwd()
    env = {
        "EQUIP_DATABASE_URL": f"sqlite:///{folder / 'equip.db'}",
        "EQUIP_LINK_SECRET": LINK_SECRET,
        "EQUIP_PUBLIC_URL": "https://equip.example.org",
    }
    os.chdir(folder)
    try:
        result = CliRunner().invoke(
            main, ["send", SPEC, "--allow-past", "--yes", "--backend", "outbox"], env=env
        )
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def project(demo_project, sent_store):
    for part in sent_store.glob("equip.db*"):  # with its WAL
        shutil.copy(part, demo_project / part.name)
    return demo_project


def test_both_shipped_exports_import_once_and_reach_the_roster(project):
    code, out = run("signups", "import", SPEC, EVENTBRITE, "--dry-run")
    assert code == 0, out
    assert out.startswith(
        "Would import eventbrite-data-masterclass.csv (Eventbrite attendee export) for Data "
        "masterclass: 8 new sign-ups, 0 already registered."
    )
    assert out.endswith("Dry run: nothing was saved.")

    code, out = run("signups", "import", SPEC, EVENTBRITE)
    assert code == 0, out
    assert "8 new sign-ups, 0 already registered." in out
    assert (
        "Not on the campaign's lists, imported all the same (2): "
        f"{EVENTBRITE}:9: Priya Example <p***@e***.example> "
        f"{EVENTBRITE}:10: Tom Sample <t***@e***.net>" in out
    )
    assert (
        "Cancelled or refunded in the booking tool, not imported (1): "
        f"{EVENTBRITE}:6: Imran Taylor <i***@n***.example>" in out
    )
    assert (
        f"imported once (1): {EVENTBRITE}:11: Ines Smith <I***@n***.example>, as {EVENTBRITE}:8"
        in out
    )
    assert "@nhs.example" not in out  # addresses are masked on screen

    code, out = run("signups", "import", "2019-04-equip-training", FORMS)
    assert code == 0, out
    assert "(Microsoft Forms responses) for Data masterclass: 4 new sign-ups, 1 already" in out
    assert f"{FORMS}:Form1!row 5: Sam Begum <s***@n***.example> (confirmed, from an import)" in out

    code, out = run("signups", "import", SPEC, EVENTBRITE)
    assert code == 0 and "0 new sign-ups, 8 already registered." in out

    code, out = run("roster", SPEC, "--session", "2019-10-15", "--out", "r")
    assert code == 0, out
    assert "12 booked" in out  # elsewhere (the table wraps it)
    with open(project / "r" / "data-masterclass_2019-10-15.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["Status"] for r in rows} == {"confirmed"}
    levels = {r["Name"]: r["QI level"] for r in rows}
    assert levels["Una Taylor"] == "project" and levels["Tom Sample"] == ""
    assert {r["Name"]: r["Access needs"] for r in rows if r["Access needs"]} == {
        "Imran Thomas": "Step-free access, please",
        "Hamza Ahmed": "I use a wheelchair",
    }


def test_a_bad_row_stops_the_import_before_anything_is_saved(project):
    forms_xlsx(
        project / "bad.xlsx",
        [
            Booking("Good", "Row", "good@nhs.example", date="27/06/2019"),
            Booking("Bad", "Row", "bad@@nhs.example", date="27/06/2019"),
        ],
    )
    code, out = run("signups", "import", SPEC, "bad.xlsx", "--course", "EQUIP Basics")
    assert code == 1
    assert out == (
        "Error: bad.xlsx: 1 row cannot be imported, so nothing was: "
        'bad.xlsx:Form1!row 3: email "bad@@nhs.example" is not a valid address '
        "Hint: Fix those rows in the file (or delete them), then run the same command again."
    )
    code, out = run("roster", SPEC, "--session", "equip-basics@2019-06-27", "--out", "r")
    assert code == 0 and "0 of 30" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nowhere.csv"],
            "Error: nowhere.csv: no such file Hint: Give the attendee export you downloaded",
        ),
        (
            [FORMS, "--course", "yoga"],
            "Error: campaign 2019-04-equip-training has no course 'yoga' Hint: Its courses: "
            "equip-basics (EQUIP Basics), equip-in-action (EQUIP in Action), data-masterclass "
            "(Data masterclass).",
        ),
    ],
)
def test_plain_errors(project, args, message):
    code, out = run("signups", "import", SPEC, *args)
    assert code == 1 and out.startswith(message), out


def test_a_file_that_names_no_course_asks_for_one_when_it_could_be_several(project):

    from equip_mailer import store

    engine = store.open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.begin() as conn:  # EQUIP Basics booked elsewhere too: two candidates
        conn.execute(
            store.signup_courses.update()
            .where(store.signup_courses.c.course_id == "equip-basics")
            .values(hosted=False)
        )
    engine.dispose()
    code, out = run("signups", "import", SPEC, FORMS)
    assert code == 1
    assert out.startswith(
        "Error: the file does not say which course its people booked Hint: Name it with --course"
    ), out
    code, out = run("signups", "import", SPEC, EVENTBRITE)  # its Event Name says which
    assert code == 0 and "for Data masterclass: 8 new sign-ups" in out, out


def test_an_event_name_that_is_none_of_the_campaigns_courses_stops_the_import(project):
    """Found in the audit: an export whose Event Name is another event ("Advanced Data
    Skills") was imported into the campaign's only course booked elsewhere without a word.
    It is refused, naming what the file says; --course imports it when that is meant."""
    other = project / "other-event.csv"
    text = (project / EVENTBRITE).read_text(encoding="utf-8-sig")
    other.write_text(text.replace(",Data masterclass,", ",Advanced Data Skills,"), "utf-8")

    code, out = run("signups", "import", SPEC, str(other))

    assert code == 1
    assert out.startswith(
        "Error: the file's event or course column says 'Advanced Data Skills', which is not "
        "one course of campaign 2019-04-equip-training, so nothing was imported Hint: If these "
        "are its people, name the course with --course;"
    ), out
    code, out = run("signups", "import", SPEC, str(other), "--course", "data-masterclass")
    assert code == 0 and "for Data masterclass: 8 new sign-ups" in out, out


def test_a_newer_export_that_cancels_an_imported_place_says_the_place_is_still_held(project):
    """Found in the audit: a newer Eventbrite export in which an imported attendee had been
    refunded said "Cancelled or refunded in the booking tool, not imported", while the
    place the first import gave stayed confirmed on the roster and in the report. A row
    still booked on another ticket of the same address is not such a case."""
    ann = Booking("Ann", "Lee", "ann.lee@nhs.example")
    bob = Booking("Bob", "Ray", "bob.ray@nhs.example")
    eventbrite_csv(project / "first.csv", [ann, bob])
    code, out = run("signups", "import", SPEC, "first.csv")
    assert code == 0 and "2 new sign-ups" in out, out

    refunded = Booking("Ann", "Lee", "ann.lee@nhs.example", status="Refunded")
    bob_gone = Booking("Bob", "Ray", "bob.ray@nhs.example", status="Not attending")
    eventbrite_csv(project / "newer.csv", [refunded, bob_gone, bob])
    code, out = run("signups", "import", SPEC, "newer.csv")

    assert code == 0, out
    assert (
        "Cancelled or refunded in the booking tool, but still holding a place here from an "
        "earlier import (cancel it on the team's roster page if the booking tool is right) "
        "(1): newer.csv:2: Ann Lee <a***@n***.example> (registration " in out
    )
    assert (  # Bob's second ticket still books him
        "Cancelled or refunded in the booking tool, not imported (1): "
        "newer.csv:3: Bob Ray <b***@n***.example>" in out
    )


def test_someone_forgotten_is_not_imported_again_from_an_older_export(project):
    """Found in the audit: after `forget`, importing an export made before they asked put
    their address, name and place back in the store. Their row is left out and named."""
    code, out = run("forget", "una.taylor5@nhs.example", "--yes")
    assert code == 0, out

    code, out = run("signups", "import", SPEC, EVENTBRITE)

    assert code == 0, out
    assert "7 new sign-ups, 0 already registered." in out
    assert f"Erased at their request (equip-mailer forget), not imported (1): {EVENTBRITE}:2" in out
    code, out = run("roster", SPEC, "--session", "2019-10-15", "--out", "r")
    assert code == 0, out
    text = (project / "r" / "data-masterclass_2019-10-15.csv").read_text(encoding="utf-8-sig")
    assert "Una" not in text and "una.taylor5" not in text.lower()
    assert text.count("\n") == 1 + 7  # the header and the seven imported


def test_another_link_secret_is_refused_before_anything_is_recorded(project, monkeypatch):
    """Found in review: erased people are recognised by a hash under the store's link
    secret, so under another one (a shell without EQUIP_LINK_SECRET makes a new one) an
    import or an attendance sheet would record an erased address again, and attendance's
    mails would carry links that answer 404. Both refuse, as send and forget do."""
    monkeypatch.setenv("EQUIP_LINK_SECRET", "another-secret-" + "x1Y2z3W4v5U6t7S8r9Q0p1O2n3M4")
    sheet = project / "came.csv"
    sheet.write_text("email,session\nvik.fernandez1@nhs.example,2019-06-27\n", "utf-8")

    for args in (("signups", "import", SPEC, EVENTBRITE), ("attendance", SPEC, str(sheet))):
        code, out = run(*args)
        assert code == 1, out
        assert "is not the one this store's mail was signed with" in out, out
    from equip_mailer import store

    engine = store.open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.connect() as conn:
        recorded = [
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in (store.registrations, store.attendance)
        ]
    engine.dispose()
    assert recorded == [0, 0]
