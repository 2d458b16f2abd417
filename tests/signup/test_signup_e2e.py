"""From the email to a place and back, in headless Chromium against the real service: the
demo campaign is sent to the outbox, two readers follow their "Sign up for EQUIP Basics"
link from their .eml, the first takes the last place on an afternoon and the second joins
the waiting list; the first cancels from the link in their confirmation, and the second is
promoted and emailed. Every calendar is read back with a real iCalendar parser, every page
passes axe-core, and the report counts the same clicks.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import email
import email.policy
import os
import re
from pathlib import Path

import icalendar
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.axe import axe_violations, describe
from support.browser import (
    click_and_wait,
    full_page_screenshot,
    ink_stats,
    open_browser,
    require_webdriver,
    set_width,
)
from support.service import bound_socket, running_app
from support.signup_data import NOW
from support.tracking_data import CHROME

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.config import Settings
from equip_mailer.track.app import create_app

SPEC = "campaigns/2019-04-equip-training.yaml"


def mails(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


def calendar_of(mail: email.message.EmailMessage) -> icalendar.Calendar:
    (part,) = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    return icalendar.Calendar.from_ical(part.get_content())


def link_in(mail: email.message.EmailMessage, pattern: str) -> str:
    found = re.search(pattern, mail.get_body(("plain",)).get_content())
    assert found, pattern
    return found.group(1)


def accessible(driver, name: str, folder: Path) -> None:
    """axe-core at phone and desktop width; screenshots (with ink) of both."""
    for width in (375, 1024):
        set_width(driver, width)
        violations = axe_violations(driver)
        assert violations == [], f"{name} at {width} px:\n{describe(violations)}"
        stats = ink_stats(full_page_screenshot(driver, folder / f"{name}-{width}.png"))
        assert stats["width"] == width and stats["ink_share"] > 0.01, (name, width, stats)


def sign_up_for_june(driver, link: str, folder: Path, name: str) -> str:
    driver.get(link)  # the /c/ link: recorded, then redirected to this reader's page
    assert "/s/" in driver.current_url and "Sign up for EQUIP Basics" in driver.title
    accessible(driver, name, folder)
    june = driver.find_element("xpath", "//label[contains(., 'Thursday 27 June 2019')]")
    june.click()
    click_and_wait(driver, driver.find_element("css selector", "main form button"))
    return driver.find_element("tag name", "main").text


@pytest.fixture
def browser():
    require_webdriver()
    driver = open_browser(1024, 900)
    # A person's browser: headless Chromium names itself, and its clicks would count as a
    # machine's in the report.
    driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": CHROME})
    yield driver
    driver.quit()


def test_from_the_email_to_a_place_a_waiting_list_and_a_promotion(
    browser, demo_project, monkeypatch, tmp_path
):
    spec = demo_project / SPEC
    spec.write_text(  # one place on the June afternoon, so the second reader waits
        spec.read_text(encoding="utf-8").replace("places: 30}", "places: 1}", 1), encoding="utf-8"
    )
    sock = bound_socket()
    public_url = "http://{}:{}".format(*sock.getsockname()[:2])
    monkeypatch.setenv("EQUIP_PUBLIC_URL", public_url)
    settings = Settings(
        database_url=f"sqlite:///{demo_project / 'equip.db'}",
        link_secret=os.environ["EQUIP_LINK_SECRET"],  # demo_project's, as the CLI reads it
        public_url=public_url,
    )
    engine = store.open_store(settings.database_url)
    app = create_app(settings, engine, notices_outbox=demo_project / "outbox")
    app.state.signup = dataclasses.replace(app.state.signup, now=lambda: NOW)
    runner = CliRunner()
    with running_app(app, sock=sock):
        sent = runner.invoke(main, ["send", SPEC, "--allow-past", "--yes", "--backend", "outbox"])
        assert sent.exit_code == 0, sent.output
        with engine.begin() as conn:  # read an hour after sending (not a scanner's seconds)
            earlier = store.utcnow() - dt.timedelta(hours=1)
            conn.execute(store.ledger.update().values(sent_at=earlier))
            conn.execute(store.batches.update().values(finished_at=earlier))
        newsletters = [
            m
            for m in mails(demo_project / "outbox" / "2019-04-equip-training")
            if m["X-Equip-Segment"] == "getting-started"
        ]
        first, second = newsletters[:2]
        pattern = r"Sign up for EQUIP Basics: (http://\S+/c/\S+)"
        assert re.search(
            r"Share this course:\s+" + re.escape(public_url + "/join/"),
            first.get_body(("plain",)).get_content(),
        )

        page = sign_up_for_june(browser, link_in(first, pattern), tmp_path, "signup-first")
        assert "Your place is confirmed" in page
        accessible(browser, "confirmed", tmp_path)
        page = sign_up_for_june(browser, link_in(second, pattern), tmp_path, "signup-second")
        assert "waiting list: number 1" in page

        app.state.service.notices.drain()
        notices = {
            m["To"].addresses[0].addr_spec: m for m in mails(demo_project / "outbox" / "notices")
        }
        confirmation = notices[first["To"].addresses[0].addr_spec]
        assert (
            confirmation["Subject"] == "Your place on EQUIP Basics is confirmed: Thursday 27 June"
        )
        (event,) = calendar_of(confirmation).walk("VEVENT")
        assert event.decoded("DTSTART").astimezone(dt.UTC) == dt.datetime(
            2019, 6, 27, 12, 0, tzinfo=dt.UTC
        )
        assert "Waiting" in notices[second["To"].addresses[0].addr_spec]["Subject"].title()

        browser.get(link_in(confirmation, r"See or cancel your place:\s+(http://\S+)"))
        accessible(browser, "my-place", tmp_path)
        click_and_wait(browser, browser.find_element("css selector", "main form button"))
        assert "Your place is cancelled" in browser.find_element("tag name", "main").text

        app.state.service.notices.drain()
        promoted = [
            m
            for m in mails(demo_project / "outbox" / "notices")
            if m["Subject"].startswith("A place has come up for you on EQUIP Basics")
        ]
        assert [m["To"].addresses[0].addr_spec for m in promoted] == [
            second["To"].addresses[0].addr_spec
        ]
        (again,) = calendar_of(promoted[0]).walk("VEVENT")
        assert again["SUMMARY"] == "EQUIP Basics" and again.decoded("DTSTART").hour == 13

    with engine.connect() as conn:
        states = dict(
            conn.execute(sa.select(store.registrations.c.email, store.registrations.c.status)).all()
        )
    assert sorted(states.values()) == ["cancelled", "confirmed"]

    report = runner.invoke(main, ["report", SPEC])
    assert report.exit_code == 0, report.output
    with open(
        demo_project / "report" / "2019-04-equip-training" / "courses.csv",
        newline="",
        encoding="utf-8-sig",
    ) as fh:
        courses = {row["Course"]: row for row in csv.DictReader(fh)}
    assert int(courses["EQUIP Basics"]["Unique human clickers"]) == 2

    # The roster and the report count the same people: the promoted reader has the one
    # June place, nobody waits, the first reader (cancelled) is on neither.
    roster = runner.invoke(main, ["roster", SPEC, "--out", "rosters"])
    assert roster.exit_code == 0, roster.output
    assert re.search(
        r"EQUIP Basics\s*│\s*2019-06-27\s*│\s*13:00\s*│\s*1 of 1\s*│\s*0", roster.output
    )
    june = read_csv(demo_project / "rosters" / "equip-basics_2019-06-27.csv")
    second_address = second["To"].addresses[0].addr_spec
    assert [(r["Email"], r["Status"], r["Starts"]) for r in june] == [
        (second_address, "confirmed", "2019-06-27 13:00")
    ]
    assert june[0]["QI level"] == "none" and june[0]["Attended"] == ""
    places = {
        (r["Course"], r["Session"]): r
        for r in read_csv(demo_project / "report" / "2019-04-equip-training" / "places.csv")
    }
    for stem, key in (
        ("equip-basics_2019-06-27", ("EQUIP Basics", "2019-06-27")),
        ("equip-basics_2019-09-10", ("EQUIP Basics", "2019-09-10")),
        ("equip-in-action_2019-06-13", ("EQUIP in Action", "2019-06-13")),
    ):
        people = read_csv(demo_project / "rosters" / f"{stem}.csv")
        row = places[key]
        assert int(row["Signed up: place"]) == sum(p["Status"] == "confirmed" for p in people)
        assert int(row["Signed up: waiting"]) == sum(p["Status"] == "waiting" for p in people)
    assert places[("EQUIP Basics", "2019-06-27")]["Places"] == "1"
    assert courses["EQUIP Basics"]["Signed up: place"] == "1"
    funnel = {
        r["Segment"]: r
        for r in read_csv(demo_project / "report" / "2019-04-equip-training" / "funnel.csv")
    }
    assert (funnel["New to QI"]["Signed up: place"], funnel["New to QI"]["Signed up: waiting"]) == (
        "1",
        "0",
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))
