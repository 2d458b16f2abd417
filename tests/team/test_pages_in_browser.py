"""The team pages in headless Chromium, as a person uses them: sign in with the link from
the outbox, look at every page at phone (375 px) and desktop (1280 px) width, sign out.

Every page must pass axe-core's WCAG 2.x A and AA rules and fit a phone's width (wide
tables scroll inside their own region). Screenshots land in the test's folder, and in
``$EQUIP_SCREENSHOTS`` when set, to be looked at.
"""

from __future__ import annotations

from support.browser import click_and_wait
from support.signup_data import NOW, hosted_campaign, seed_readers
from support.team_browser import check_page, submit
from support.team_pages import add_uncertain_batch, link_in, sign_in_mails
from support.tracking_data import seed_campaign

from equip_mailer import store
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


def signups_with_a_waiting_list(engine, tmp_path, demo_path):
    """EQUIP Basics' first afternoon (2 places) with two people in it and one waiting."""
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(2, 2), action_places=1)
    seed_readers(engine, campaign, 3)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        course = find_course(conn, campaign.id, "equip-basics")
    for i in range(3):
        with store.immediate(engine) as conn:
            reg.register(
                conn,
                course.id,
                reg.Applicant(
                    email=f"reader{i}@nhs.example",
                    name=f"Reader Number{i}",
                    practice="Example Health Centre",
                    role="Practice nurse",
                    access_needs="Needs step-free access and a hearing loop" if i == 1 else None,
                ),
                course.sessions[0].id,
                NOW,
            )
    return campaign, course


def sign_in(browser, team, address: str) -> None:
    """As a member does: the form, the link from the outbox, its button."""
    browser.get(f"{team.base_url}/team/sign-in")
    browser.find_element("id", "email").send_keys(address)
    submit(browser)
    team.delivered()
    browser.get(link_in(sign_in_mails(team.outbox)[-1]))
    submit(browser)


def test_every_team_page_is_accessible_and_fits_a_phone(
    team, engine, settings, browser, tmp_path, demo_path
):
    secret = settings.require_link_secret()
    campaign, course = signups_with_a_waiting_list(engine, tmp_path, demo_path)
    seed_campaign(engine, secret, campaign_id="2019-01-equip")
    seed_campaign(engine, secret, campaign_id="2019-04-equip-training-with-a-long-id")
    add_uncertain_batch(engine, "2019-04-equip-training-with-a-long-id", ["carol@example.org"])
    shots = tmp_path / "screens"
    shots.mkdir()
    b = team.base_url

    browser.get(f"{b}/team/")  # no session: the sign-in page
    assert browser.current_url == f"{b}/team/sign-in?next=/team/"
    check_page(browser, "sign-in", shots)
    browser.find_element("id", "email").send_keys("not an address")
    submit(browser)
    assert "Enter your email address" in browser.page_source
    check_page(browser, "sign-in-error", shots)
    email = browser.find_element("id", "email")
    email.clear()
    email.send_keys("ann@nhs.example")
    submit(browser)
    assert browser.find_element("tag name", "h1").text == "Check your email"
    check_page(browser, "check-mail", shots)

    team.delivered()
    link = link_in(sign_in_mails(team.outbox)[-1])
    browser.get(link)
    check_page(browser, "link", shots)
    submit(browser)
    assert browser.current_url == f"{b}/team/"
    assert "Signed in as ann@nhs.example" in browser.page_source
    check_page(browser, "campaigns", shots)
    browser.get(f"{b}/team/campaigns/2019-01-equip")
    assert "Click-through rate" in browser.page_source
    check_page(browser, "report", shots)
    browser.get(f"{b}/team/campaigns/{campaign.id}/signups")
    check_page(browser, "signups", shots)
    first = course.sessions[0]
    browser.get(f"{b}/team/campaigns/{campaign.id}/sessions/{first.id}")
    assert "Waiting list (1)" in browser.page_source
    check_page(browser, "roster", shots)
    click_and_wait(browser, browser.find_element("css selector", 'a[href$="/give-place"]'))
    check_page(browser, "give-place", shots)
    submit(browser)
    assert "Done: Gave Reader Number2 (registration" in browser.page_source
    check_page(browser, "roster-changed", shots)
    click_and_wait(browser, browser.find_element("css selector", 'a[href$="/cancel"]'))
    assert "Cancel Reader Number0" in browser.page_source
    check_page(browser, "cancel-place", shots)
    browser.get(f"{b}/team/campaigns/{campaign.id}/sessions/999999")  # a plain problem page
    assert "No such session" in browser.page_source
    check_page(browser, "no-such-session", shots)
    browser.get(link)  # used: it says so
    check_page(browser, "link-used", shots)
    browser.get(f"{b}/team/activity")
    assert "signed in" in browser.page_source
    check_page(browser, "activity", shots)

    click_and_wait(browser, browser.find_element("css selector", "header form button"))
    assert browser.current_url == f"{b}/team/sign-in?signed_out=1"
    assert "You have signed out" in browser.page_source
    browser.get(f"{b}/team/activity")
    assert browser.current_url.startswith(f"{b}/team/sign-in")


def test_a_long_campaign_id_and_subject_wrap_on_a_phone(team, engine, settings, browser, tmp_path):
    """An id may be a long slug with underscores (no place a browser breaks a line) and a
    subject may hold a web address: the headings and links wrap instead of widening the
    page past the phone's screen."""
    campaign_id = "2019_04_equip_training_for_practice_managers_and_nurses"
    seed_campaign(engine, settings.require_link_secret(), campaign_id=campaign_id)
    with engine.begin() as conn:
        conn.execute(
            store.campaigns.update().values(
                subject="Book now: equip.example.org/courses/2019_autumn_programme_for_managers"
            )
        )
    shots = tmp_path / "screens"
    shots.mkdir()
    b = team.base_url
    sign_in(browser, team, "ann@nhs.example")
    check_page(browser, "campaigns-long-id", shots)
    browser.get(f"{b}/team/campaigns/{campaign_id}")
    assert "Click-through rate" in browser.page_source
    check_page(browser, "report-long-id", shots)
    browser.get(f"{b}/team/campaigns/{campaign_id}/signups")
    check_page(browser, "signups-long-id", shots)


def test_the_report_counting_page_does_not_refresh_itself(browser, tmp_path):
    """Found in the audit: the page shown while a campaign's first count runs (over 20
    seconds, on a big store) reloaded itself every 3 seconds, which axe-core flags as
    critical (WCAG 2.2.1: a screen reader starts again at each reload). Its link asks again,
    and that answer waits for the count."""
    from support.axe import axe_violations, describe

    from equip_mailer.team.render import environment

    html = (
        environment()
        .get_template("report_counting.html.j2")
        .render(
            path="/team/campaigns/2019-04-equip-training",
            campaign_id="2019-04-equip-training",
            tab="report",
            human_only=True,
            title="Report: 2019-04-equip-training",
        )
    )
    page = tmp_path / "counting.html"
    page.write_text(html, encoding="utf-8")
    browser.get(page.as_uri())

    violations = axe_violations(browser)
    assert violations == [], describe(violations)
    assert not browser.find_elements("css selector", "meta[http-equiv='refresh']")
    link = browser.find_element("link text", "Look again now")
    assert link.get_attribute("href").endswith("/team/campaigns/2019-04-equip-training")


def test_a_roster_with_unbroken_long_values_scrolls_in_its_table(
    team, engine, browser, tmp_path, demo_path
):
    """Found in the audit: a 130-letter name, a practice joined by underscores and 300
    letters of access needs made the roster page 4,693 px wide at desktop width: the
    buttons' visually hidden labels (position: absolute) escaped the table's scroll region.
    The table still scrolls inside its region; the page keeps the window's width."""
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(2, 2), action_places=1)
    seed_readers(engine, campaign, 1)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        course = find_course(conn, campaign.id, "equip-basics")
    with store.immediate(engine) as conn:
        reg.register(
            conn,
            course.id,
            reg.Applicant(
                email="reader0@nhs.example",
                name="N" * 130,
                practice="Example_Health_Centre_" * 5,
                access_needs="x" * 300,
            ),
            course.sessions[0].id,
            NOW,
        )
    shots = tmp_path / "screens"
    shots.mkdir()
    b = team.base_url
    sign_in(browser, team, "ann@nhs.example")
    browser.get(f"{b}/team/campaigns/{campaign.id}/sessions/{course.sessions[0].id}")

    page_width, window = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert page_width == window
    check_page(browser, "roster-long-values", shots)
