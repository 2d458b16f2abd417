"""`equip-mailer people export` and `people level`: the lists written back with current QI
levels, readable as a list again, without the people who were erased."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET
from support.sign_in_sheets import SPEC
from support.signup_data import seed_readers

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.compose.audience import read_list
from equip_mailer.compose.spec import load_campaign
from equip_mailer.people import records

FARAH = "farah.williams1001@example.org"


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_export_writes_current_levels_in_the_list_format(demo_project):
    raised = run(
        "people", "level", "Vik.Fernandez1@nhs.example", "project", "--reason", "leads a QI project"
    )
    assert raised.exit_code == 0, raised.output
    assert "V***@n***.example is now at project." in raised.output
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        store.add_suppression(conn, records.erased_key(LINK_SECRET.encode(), FARAH), "erased")
        store.add_suppression(conn, "oliver.miah2@nhs.example", "unsubscribe", source="link")
        store.add_suppression(conn, "vik.patel68@nhs.example", "manual", source="team")
    engine.dispose()

    for name in ("people.csv", "people.xlsx"):
        result = run("people", "export", SPEC, "--out", name)
        assert result.exit_code == 0, result.output
        assert "Wrote 336 people to" in result.output
        assert "1 at a higher QI level than their list says, 1 erased left out." in result.output
        people, rejects, rows = read_list(demo_project / name, name)
        assert (rejects, rows) == ([], 336)
        by_key = {p.key: p for p in people}
        assert FARAH not in by_key
        assert by_key["vik.fernandez1@nhs.example"].qi_level == "project"
        assert by_key["oliver.miah2@nhs.example"].qi_level == "basics"  # as the list says

    text = (demo_project / "people.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == (
        "email,first_name,last_name,practice,role,qi_level,qi_level_why,mail_stopped"
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f"Vik,Fernández,Tower View Surgery,Practice nurse,project,set by hand on {today}" in text
    # someone who unsubscribed stays (the suppression still stops them here) but is marked,
    # so the file taken into another mailing tool does not mail them again
    (oliver,) = [line for line in text.splitlines() if line.startswith("oliver.miah2@")]
    assert oliver.endswith(f",basics,list,unsubscribed {today}")
    (patel,) = [line for line in text.splitlines() if line.startswith("vik.patel68@")]
    assert patel.endswith(f",stopped by the team {today}")  # in words, not "manual"
    # nobody else but the three the campaign's suppression file names (the next test)
    assert sum(line.endswith(",") for line in text.splitlines()[1:]) == 331
    again = run("people", "export", SPEC, "--out", "people.csv")
    assert again.exit_code == 1 and "people.csv exists already" in again.output


def test_people_the_suppression_file_names_are_marked_as_stopped(demo_project):
    """Found in review: ``mail_stopped`` came from the store's suppressions only, so the
    three listed people the campaign's suppression file names (one unsubscribed, one
    bounced, one asked by phone) went out unmarked, and a file taken into another mailing
    tool would have mailed them, though this tool never does."""
    result = run("people", "export", SPEC, "--out", "people.csv")
    assert result.exit_code == 0, result.output
    text = (demo_project / "people.csv").read_text(encoding="utf-8-sig")
    stopped = {line.split(",")[0].lower(): line.rsplit(",", 1)[1] for line in text.splitlines()[1:]}
    for address in (
        "laila.evans4@nhs.example",
        "ines.thomas59@nhs.example",
        "mohammed.zielinska1011@example.net",
    ):
        assert stopped[address] == "in lists/suppressions.csv", address
    assert sum(bool(v) for v in stopped.values()) == 3


def test_a_formula_like_name_reads_back_as_it_was(demo_project):
    """Found in the audit: the export keeps a name such as "=HYPERLINK(...)" from running in
    Excel with a leading apostrophe, and reading the file back as a list kept the apostrophe,
    so the next campaign greeted "Dear '=HYPERLINK(...),". It reads back as the list had it."""
    lists = demo_project / "lists"
    staff = next(p for p in sorted(lists.glob("*.csv")) if "Vik" in p.read_text("utf-8-sig"))
    staff.write_text(
        staff.read_text(encoding="utf-8-sig").replace(",Vik,", ',"=HYPERLINK(""x"")",', 1),
        encoding="utf-8",
    )

    for name in ("people.csv", "people.xlsx"):
        result = run("people", "export", SPEC, "--out", name)
        assert result.exit_code == 0, result.output
        people, _, _ = read_list(demo_project / name, name)
        vik = next(p for p in people if p.key == "vik.fernandez1@nhs.example")
        assert vik.first_name == '=HYPERLINK("x")'
    text = (demo_project / "people.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text  # still defused for Excel


def test_an_unknown_level_is_named_as_the_level(demo_project):
    """Found in the walkthrough: the error read "Invalid value for '{none|basics|project}'"."""
    wrong = run("people", "level", "vik.fernandez1@nhs.example", "expert", "--reason", "x")
    assert wrong.exit_code == 2
    assert "Invalid value for 'LEVEL': 'expert' is not one of 'none', 'basics', 'project'." in (
        wrong.output
    )
    assert "people level [OPTIONS] EMAIL LEVEL" in wrong.output
    assert not (demo_project / "equip.db").exists()  # nothing recorded, no store made


def test_export_names_the_formats_it_writes(demo_project):
    result = run("people", "export", SPEC, "--out", "people.txt")
    assert result.exit_code != 0
    assert "writes .csv or .xlsx, not .txt" in result.output
    assert not (demo_project / "people.txt").exists()


def test_a_level_for_an_address_nobody_was_sent_is_kept_but_noted(demo_project):
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    seed_readers(engine, load_campaign(SPEC, allow_past=True), 1)  # reader0 was sent the mail
    engine.dispose()
    known = run("people", "level", "Reader0@nhs.example", "basics", "--reason", "r")
    assert known.exit_code == 0, known.output
    assert "Note:" not in known.output
    typo = run("people", "level", "raeder0@nhs.example", "basics", "--reason", "r")
    assert typo.exit_code == 0, typo.output
    assert "is now at basics" in typo.output
    assert "no campaign sent so far and no sign-up names r***@n***.example" in typo.output


def test_lowering_a_level_below_the_last_campaign_s_says_the_list_still_counts(demo_project):
    """Found in the audit: `people level ... basics` for someone the lists (and so the last
    campaign) have at project printed "is now at basics", yet check and send kept them at
    project, as they use the higher of the two. The command now says so."""

    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    campaign = load_campaign(SPEC, allow_past=True)
    seed_readers(engine, campaign, 2)
    with engine.begin() as conn:
        conn.execute(store.ledger.update().values(qi_level="project"))
    engine.dispose()

    lowered = run("people", "level", "reader0@nhs.example", "basics", "--reason", "no project")
    raised = run("people", "level", "reader1@nhs.example", "project", "--reason", "has one")

    assert lowered.exit_code == 0, lowered.output
    text = " ".join(lowered.output.split())
    assert "r***@n***.example is now at basics." in text
    assert (
        f"Note: the last campaign ({campaign.id}) counted them at project, and check and send "
        "use the higher of this level and their list's: if their list says project, change "
        "it there too, or the next campaign still treats them so." in text
    )
    assert raised.exit_code == 0 and "Note:" not in raised.output


def test_export_with_another_link_secret_is_refused(demo_project, monkeypatch, tmp_path):
    """Erased people are left out by their hash under the store's link secret; under another
    secret they would quietly be written back into the master list."""
    sent = CliRunner().invoke(main, ["send", SPEC, "--allow-past", "--backend", "outbox", "--yes"])
    assert sent.exit_code == 0, sent.output
    monkeypatch.setenv("EQUIP_LINK_SECRET", "another-secret-" + "x1Y2z3W4v5U6t7S8r9Q0p1O2n3M4")

    refused = CliRunner().invoke(main, ["people", "export", SPEC, "--out", "people.csv"])

    assert refused.exit_code == 1
    assert "is not the one this store's mail was signed with" in refused.output
    assert not (demo_project / "people.csv").exists()


def test_a_level_for_someone_forgotten_is_refused(demo_project):
    """Found in the audit: after `forget`, `people level` stored the address again in a new
    level row and noted only 'no campaign sent so far ... names' it. forget's promise is
    that the store holds the address no more, so the level is refused, saying why."""
    vik = "vik.fernandez1@nhs.example"
    assert run("send", SPEC, "--allow-past", "--backend", "outbox", "--yes").exit_code == 0
    assert run("forget", vik, "--yes").exit_code == 0

    refused = run("people", "level", "Vik.Fernandez1@NHS.example", "basics", "--reason", "r")

    assert refused.exit_code == 1
    out = " ".join(refused.output.split())
    assert "V***@n***.example was erased at their request (equip-mailer forget)" in out
    assert vik not in refused.output.lower()
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(store.person_levels)).all() == []
    engine.dispose()


def test_the_xlsx_opens_ready_to_work_in(demo_project):
    """Found in the audit: people.xlsx (the team's master list, 300+ rows) opened with
    every column at Excel's default width, so addresses and practices were cut off, and the
    header scrolled away with no filter buttons, unlike the rosters and the report. The
    header is bold, frozen and filtered, and the columns fit their contents."""
    from openpyxl import load_workbook

    result = run("people", "export", SPEC, "--out", "people.xlsx")
    assert result.exit_code == 0, result.output
    sheet = load_workbook(demo_project / "people.xlsx")["People"]
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold
    assert sheet.auto_filter.ref == f"A1:H{sheet.max_row}"
    longest = max(len(c.value) for c in sheet["A"] if c.value)
    assert sheet.column_dimensions["A"].width >= min(longest, 50)
    assert sheet.column_dimensions["D"].width > 20  # practice names
