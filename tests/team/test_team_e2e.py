"""A trainer's whole visit to the team pages in headless Chromium, driven offline: ask for a
link, read the sign-in mail from the outbox, open it, read the campaign's report and see the
numbers ``equip-mailer report`` prints, download a session's roster, mark one person as having
come and see their QI level change, sign out. Every page is checked with axe-core and
screenshotted at 375 and 1280 px (``support.team_browser.check_page``)."""

from __future__ import annotations

import csv
import re
import time

import sqlalchemy as sa
from click.testing import CliRunner
from support.browser import click_and_wait
from support.report_fixture import (
    CAMPAIGN,
    create_campaign,
    insert_events,
    insert_links,
    insert_recipients,
)
from support.report_fixture import _events as hand_counted_events
from support.signup_data import NOW, hosted_campaign
from support.team_browser import check_page, submit
from support.team_pages import link_in, sign_in_mails

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.people import levels
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses

CARD = re.compile(r'<p class="label">([^<]+)</p><p class="value">([^<]+)</p>')
CELL = re.compile(r"<t[dh][^>]*>([^<]*)</t[dh]>")


def seed(engine, tmp_path, demo_path):
    """The report fixture's sent campaign (12 readers, hand-counted clicks) with the demo's
    courses taken here; readers 1 and 6 have the first Basics afternoon (2 places), reader
    10 waits for it."""
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn)
        insert_events(conn, hand_counted_events())
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(2, 2))
    assert campaign.id == CAMPAIGN
    with engine.begin() as conn:
        register_courses(conn, campaign)
        course = find_course(conn, CAMPAIGN, "equip-basics")
    for rid in (1, 6, 10):
        with store.immediate(engine) as conn:
            reg.register(
                conn,
                course.id,
                reg.Applicant(
                    email=f"person{rid}@example.org",
                    name=f"Person{rid} Example",
                    practice="Practice A",
                    ledger_id=rid,
                ),
                course.sessions[0].id,
                NOW,
            )
    return course


def report_sections(html: str) -> tuple[dict[str, str], list[str]]:
    """The cards and every table cell of a report page, as text."""
    body = html[html.index('<div class="cards">') :]
    body = body[: body.index("About these figures")]
    return dict(CARD.findall(body)), [c.strip() for c in CELL.findall(body)]


def test_a_trainer_signs_in_reads_the_report_downloads_the_roster_and_marks_attendance(
    team, engine, settings, browser, tmp_path, demo_path
):
    course = seed(engine, tmp_path, demo_path)
    first = course.sessions[0]
    shots = tmp_path / "screens"
    shots.mkdir()
    b = team.base_url

    # Ask for a link and read it from the outbox.
    browser.get(f"{b}/team/campaigns/{CAMPAIGN}")
    assert browser.current_url.startswith(f"{b}/team/sign-in?next=")
    check_page(browser, "e2e-sign-in", shots)
    browser.find_element("id", "email").send_keys("ann@nhs.example")
    submit(browser)
    assert browser.find_element("tag name", "h1").text == "Check your email"
    team.delivered()
    [mail] = sign_in_mails(team.outbox)
    assert mail["To"] == "ann@nhs.example"
    browser.get(link_in(mail))
    check_page(browser, "e2e-link", shots)
    submit(browser)
    assert "Signed in as ann@nhs.example" in browser.page_source

    # The report, as equip-mailer report counts it.
    click_and_wait(
        browser, browser.find_element("css selector", f'a[href="/team/campaigns/{CAMPAIGN}"]')
    )
    for _ in range(100):  # the first count may still be running: the page looks again
        if 'class="cards"' in browser.page_source:
            break
        time.sleep(0.1)
        browser.refresh()
    page_cards, page_cells = report_sections(browser.page_source)
    check_page(browser, "e2e-report", shots)
    out = tmp_path / "cli-report"
    env = {"EQUIP_DATABASE_URL": settings.database_url, "EQUIP_LINK_SECRET": "x" * 40}
    result = CliRunner().invoke(main, ["report", CAMPAIGN, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    cli_cards, cli_cells = report_sections((out / "report.html").read_text(encoding="utf-8"))
    assert page_cards == cli_cards and page_cells == cli_cells
    assert page_cards["Sent"] == "11" and page_cards["Unique clickers"] == "5"
    for label in ("Sent", "Delivered", "Unique clickers"):  # and the terminal summary
        assert re.search(rf"{label}\D*{page_cards[label]}\b", result.output), label

    # The session's roster, downloaded.
    click_and_wait(browser, browser.find_element("link text", "Sign-ups and rosters"))
    check_page(browser, "e2e-signups", shots)
    click_and_wait(
        browser,
        browser.find_element(
            "css selector", f'a[href="/team/campaigns/{CAMPAIGN}/sessions/{first.id}"]'
        ),
    )
    check_page(browser, "e2e-roster", shots)
    browser.find_element("link text", "roster.csv").click()
    downloaded = tmp_path / "downloads" / f"equip-basics_{first.key}.csv"
    for _ in range(100):
        if downloaded.exists() and downloaded.stat().st_size:
            break
        time.sleep(0.1)
    with downloaded.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["Name"], r["Status"]) for r in rows] == [
        ("Person1 Example", "confirmed"),
        ("Person6 Example", "confirmed"),
        ("Person10 Example", "waiting"),
    ]
    person1 = rows[0]["Registration"]

    # Person1 came: completing EQUIP Basics raises them to basic QI.
    row = browser.find_element("id", f"person-{person1}")
    assert "new to QI" in row.text and "Not marked" in row.text
    click_and_wait(browser, row.find_element("css selector", 'button[value="yes"]'))
    row = browser.find_element("id", f"person-{person1}")
    assert "Came" in row.text and "basic QI knowledge" in row.text
    assert "raised after EQUIP Basics" in row.text
    assert "raised their QI level to basics" in browser.page_source  # the change, logged
    check_page(browser, "e2e-roster-marked", shots)
    with engine.connect() as conn:
        level = levels.current(conn, "person1@example.org")
        marks = conn.execute(
            sa.select(store.attendance.c.attended, store.attendance.c.recorded_by)
        ).all()
    assert level is not None and level.level == "basics"
    assert [(bool(a), by) for a, by in marks] == [(True, "ann@nhs.example")]

    # Sign out: the pages are locked again.
    click_and_wait(browser, browser.find_element("css selector", "header form button"))
    assert "You have signed out" in browser.page_source
    check_page(browser, "e2e-signed-out", shots)
    browser.get(f"{b}/team/campaigns/{CAMPAIGN}/sessions/{first.id}")
    assert browser.current_url.startswith(f"{b}/team/sign-in")
