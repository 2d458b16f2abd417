"""`equip-mailer report`, driven end to end: the files the team opens, checked the way they
open them (openpyxl for Excel, csv for the CSVs), the summary it prints, and its errors.

The page itself is checked in a browser in tests/report/test_page.py, formula defusing in
tests/report/test_spreadsheets.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from support.report_fixture import (
    CAMPAIGN,
    RECIPIENTS,
    at,
    build_hand_computed_store,
    create_campaign,
    insert_events,
    insert_links,
    insert_recipients,
    read_csv,
)

from equip_mailer.cli import main

TABLES = [
    "funnel",
    "courses",
    "places",
    "segment_courses",
    "sessions",
    "practices",
    "roles",
    "days",
    "over_time",
    "machine",
]


def run(*args: str, db: str):
    return CliRunner().invoke(main, list(args), env={"EQUIP_DATABASE_URL": db})


@pytest.fixture
def made(sqlite_url, demo_path, tmp_path):
    """The hand-computed store reported through the CLI with the demo spec for names."""
    build_hand_computed_store(sqlite_url).dispose()
    out = tmp_path / "out"
    result = run("report", str(demo_path), "--out", str(out), db=sqlite_url)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_report_writes_html_xlsx_and_a_csv_per_table(made):
    out, output = made
    assert (out / "report.html").is_file()
    assert sorted(p.stem for p in out.glob("*.csv")) == sorted(TABLES)
    funnel = read_csv(out / "funnel.csv")
    assert funnel[0] == [
        "Segment",
        "Sent",
        "Delivered",
        "Bounced",
        "Unsubscribed",
        "Unique human clickers",
        "Click-through rate (%)",
        "Signed up: place",
        "Signed up: waiting",
        "Sign-up rate (%)",
        "Machine clicks",
        "Opens (unreliable)",
    ]
    assert funnel[1] == ["New to QI", "5", "4", "1", "1", "2", "50.0", "1", "1", "50.0", "2",
                         "1"]  # fmt: skip
    assert funnel[-1] == ["All segments", "11", "10", "1", "1", "5", "50.0", "3", "1", "40.0",
                          "3", "2"]  # fmt: skip
    assert read_csv(out / "places.csv")[1] == [
        "EQUIP Basics", "2019-06-27", "13:00", "2", "2", "1", "100.0", "0", "here",
    ]  # fmt: skip
    assert read_csv(out / "over_time.csv")[1] == ["2019-04-22 10:00", "hour", "2", "3"]
    assert read_csv(out / "days.csv")[1] == ["2019-04-22", "2", "3", "3"]

    wb = load_workbook(out / "report.xlsx")
    assert wb.sheetnames == [
        "Summary",
        "Funnel per segment",
        "Clicks and sign-ups per course",
        "Places per session",
        "Segments and courses",
        "Clicks per session",
        "Clicks per practice",
        "Clicks per role",
        "Clicks per day",
        "Clicks over time",
        "Machine and human clicks",
    ]
    summary = {row[0]: row[1] for row in wb["Summary"].iter_rows(values_only=True)}
    assert summary["Times"].startswith("UTC")  # found in the audit: the sheets never said so
    # and not that every time is UTC: the places sheet's Starts (London) is London time
    assert "session starts are London time" in summary["Times"]
    assert wb["Places per session"]["C1"].value == "Starts (London)"
    ws = wb["Funnel per segment"]
    assert ws["A1"].value == "Segment" and ws["A1"].font.bold
    assert [c.value for c in ws[5]][:7] == ["All segments", 11, 10, 1, 1, 5, 0.5]
    assert ws["G2"].number_format == "0.0%"
    assert ws.column_dimensions["F"].width >= len("Unique human clickers")
    assert ws["A5"].font.bold  # the total row
    assert wb["Clicks per day"]["A2"].number_format == "yyyy-mm-dd"

    # the terminal shows the headline and the funnel
    assert (
        "Sent 11 · Delivered 10 · Unique clickers 5 · Click-through rate 50.0% · Clicks 9 · "
        "Signed up 6" in " ".join(output.split())
    )
    # sent, delivered, unsubscribed, clickers, rate, a place, waiting
    assert re.search(r"All segments\s+11\s+10\s+1\s+5\s+50\.0%\s+3\s+1\s*\n", output)
    assert f"Report: {out / 'report.html'}" in output


def test_bare_campaign_id_reports_from_the_store_alone(sqlite_url, tmp_path, monkeypatch):
    build_hand_computed_store(sqlite_url).dispose()
    monkeypatch.chdir(tmp_path)
    result = run("report", CAMPAIGN, db=sqlite_url)
    assert result.exit_code == 0, result.output
    out = tmp_path / "report" / CAMPAIGN  # the default folder
    funnel = read_csv(out / "funnel.csv")
    assert [row[0] for row in funnel[1:]] == [
        "getting-started",
        "project-leads",
        "ready-for-action",
        "All segments",
    ]


def test_all_puts_machine_clicks_in_the_headline(sqlite_url, tmp_path):
    build_hand_computed_store(sqlite_url).dispose()
    result = run("report", CAMPAIGN, "--all", "--out", str(tmp_path / "all"), db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "Unique clickers 7 · Click-through rate 70.0%" in result.output
    assert read_csv(tmp_path / "all" / "funnel.csv")[0][5] == "Unique clickers (incl. machine)"


def test_unknown_campaign_id_is_one_plain_sentence(sqlite_url, tmp_path):
    build_hand_computed_store(sqlite_url).dispose()
    result = run("report", "2019-13-nope", "--out", str(tmp_path / "x"), db=sqlite_url)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Project {Path.cwd()} · store {sqlite_url}",  # the project holding the current folder
        "Error: there is no campaign '2019-13-nope' in the database",
        "Hint: Campaigns in the database: 2019-04-equip-training.",
    ]
    assert not (tmp_path / "x").exists()


def test_never_sent_campaign_gets_a_report_that_says_so(demo_path, sqlite_url, tmp_path):
    out = tmp_path / "unsent"
    result = run("report", str(demo_path), "--out", str(out), db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert (
        "Campaign 2019-04-equip-training has not been sent yet, so there is nothing to "
        "count; the report says so."
    ) in " ".join(result.output.split())
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Not sent yet." in html and "Nothing to show yet: no clicks." in html
    assert "<svg" not in html  # no empty charts for an unsent campaign
    assert read_csv(out / "funnel.csv")[1] == ["New to QI", "0", "0", "0", "0", "0", "", "0",
                                               "0", "", "0"]  # fmt: skip


def test_missing_database_is_not_created_by_a_report(demo_path, tmp_path):
    db = tmp_path / "never.db"
    result = run("report", str(demo_path), "--out", str(tmp_path / "o"), db=f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    assert not db.exists()
    result = run("report", CAMPAIGN, "--out", str(tmp_path / "o2"), db=f"sqlite:///{db}")
    assert result.exit_code == 1
    assert "there is no campaign '2019-04-equip-training' in the database" in result.output


def test_campaign_with_no_clicks_reads_well(demo_path, sqlite_url, tmp_path):
    from equip_mailer import store

    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn, RECIPIENTS)
    out = tmp_path / "quiet"
    result = run("report", str(demo_path), "--out", str(out), db=sqlite_url)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "No clicks yet" in html
    assert "Nothing to show yet: no clicks." in html  # the over-time table
    assert "SendGrid reported no deliveries" in html  # outbox send: no webhook


def test_compare_two_quarters(sqlite_url, demo_path, tmp_path):
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:
        create_campaign(conn, "2019-07-equip", "Summer menu")
        insert_links(conn, "2019-07-equip", id_offset=100)
        insert_recipients(
            conn,
            [(1, "getting-started", "Practice A", "GP", "sent")],
            campaign_id="2019-07-equip",
            id_offset=100,
        )
        insert_events(conn, [("click", at(7, 1, 9), 101, 101, None)], campaign_id="2019-07-equip")
    out = tmp_path / "cmp"
    result = run(
        "report", "--compare", str(demo_path), "2019-07-equip", "--out", str(out), db=sqlite_url
    )
    assert result.exit_code == 0, result.output
    summary = read_csv(out / "compare-summary.csv")
    assert [row[0] for row in summary[1:]] == [CAMPAIGN, "2019-07-equip"]
    # sent, delivered, clickers, rate, signed up
    assert summary[2][3:] == ["1", "1", "1", "100.0", "0"]
    segments = read_csv(out / "compare-segments.csv")
    assert segments[0][:4] == [
        "Segment",
        f"{CAMPAIGN} Delivered",
        f"{CAMPAIGN} Clickers",
        f"{CAMPAIGN} CTR (%)",
    ]
    # segments match by id, so the spec-less second campaign lines up under the spec's names;
    # it had no delivered events, so delivered = sent = 1
    assert segments[1] == ["New to QI", "4", "2", "50.0", "2", "1", "1", "100.0", "0"]
    assert segments[-1] == ["Running a QI project", "3", "2", "66.7", "1", "", "", "", ""]
    assert load_workbook(out / "report.xlsx").sheetnames == [
        "Summary",
        "Campaigns compared",
        "Segments compared",
        "Courses compared",
    ]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "EQUIP newsletters compared" in html and "<svg" in html
    assert "Campaigns compared" in result.output
    shown = [" ".join(line.split()) for line in result.output.splitlines()]
    # Signed up's header, on two lines, says whom it counts: summary and courses count every
    # sign-up, segments only the people the newsletter was sent to
    assert [line.rsplit(" CTR ", 1)[1] for line in shown if " CTR (" in line] == [
        "(all routes)",
        "(recipients)",
        "(all routes)",
    ]
    assert "Note: Signed up (recipients): people in the segment" in result.output


def test_compare_files_say_whom_signed_up_counts(sqlite_url, demo_path, tmp_path):
    """In the CSVs and the workbook, as on the page: a segment's sign-ups are its recipients,
    a course's every sign-up. The store's Basics has one from the open sign-up page, by
    someone not on the lists, so the course counts 3 where its segment counts 2."""
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:
        create_campaign(conn, "2019-07-equip", "Summer menu")  # not sent yet
    engine.dispose()
    out = tmp_path / "cmp"
    result = run(
        "report", "--compare", str(demo_path), "2019-07-equip", "--out", str(out), db=sqlite_url
    )
    assert result.exit_code == 0, result.output
    summary = read_csv(out / "compare-summary.csv")
    assert summary[0][-1] == "Signed up (all routes)" and summary[1][-1] == "6"
    segments = {row[0]: row for row in read_csv(out / "compare-segments.csv")}
    courses = {row[0]: row for row in read_csv(out / "compare-courses.csv")}
    assert segments["Segment"][4] == f"{CAMPAIGN} Signed up (recipients)"
    assert courses["Course"][4] == f"{CAMPAIGN} Signed up (all routes)"
    assert (segments["New to QI"][4], courses["EQUIP Basics"][4]) == ("2", "3")
    book = load_workbook(out / "report.xlsx")
    headers = [c.value for c in book["Courses compared"][1]]
    assert f"{CAMPAIGN} Signed up (all routes)" in headers
    headers = [c.value for c in book["Segments compared"][1]]
    assert f"{CAMPAIGN} Signed up (recipients)" in headers
    # The notes the page shows under each table, on the workbook's first sheet.
    notes = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert notes["Campaigns"] == f"{CAMPAIGN}, 2019-07-equip"
    assert "people in the segment the newsletter was sent to" in notes["Segments compared"]
    assert "includes people the newsletter was not sent to" in notes["Courses compared"]
    assert "however it was made" in notes["Campaigns compared"]


def test_compare_needs_two_campaigns_and_one_report_needs_one(sqlite_url):
    result = run("report", "--compare", CAMPAIGN, db=sqlite_url)
    assert result.exit_code == 1
    assert "Error: --compare needs two or more campaigns" in result.output
    result = run("report", CAMPAIGN, "2019-07-equip", db=sqlite_url)
    assert result.exit_code == 1
    assert "Error: give one campaign, not 2" in result.output


def test_out_that_is_a_file_is_a_plain_error(sqlite_url, tmp_path):
    build_hand_computed_store(sqlite_url).dispose()
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    result = run("report", CAMPAIGN, "--out", str(taken), db=sqlite_url)
    assert result.exit_code == 2  # click's usage error, before any work
    assert f"Invalid value for '--out': Directory '{taken}' is a file." in " ".join(
        result.output.split()
    )


def test_compare_refuses_the_same_campaign_twice(sqlite_url):
    result = run("report", "--compare", CAMPAIGN, CAMPAIGN, db=sqlite_url)
    assert result.exit_code == 1
    assert "Error: a campaign is named twice; name each campaign once" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(main, ["report", "--help"])
    assert "Example:" in result.output
    assert "equip-mailer report campaigns/2019-04-equip-training.yaml" in result.output


def test_report_flags_a_scan_whose_delivered_event_arrived_after_it(sqlite_url, tmp_path):
    """The click was stored as human (nothing said it came seconds after delivery); the
    delivered event came later. The report's own pass over the campaign catches it."""
    from equip_mailer import store

    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn, RECIPIENTS[:1], sent_at=None)
        insert_events(
            conn,
            [
                ("click", at(4, 22, 10, 0, 33), 1, 1, None),
                ("delivered", at(4, 22, 10, 0, 30), 1, None, None),
            ],
        )
    engine.dispose()
    result = run("report", CAMPAIGN, "--out", str(tmp_path / "out"), db=sqlite_url)
    assert result.exit_code == 0, result.output
    funnel = read_csv(tmp_path / "out" / "funnel.csv")
    # no human clicker, one machine click
    assert (funnel[-1][5:7], funnel[-1][10]) == (["0", "0.0"], "1")
