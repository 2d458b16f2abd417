"""The sign-up pages in headless Chromium, as a reader uses them with a keyboard or a phone:
every page passes axe-core's WCAG 2.x A and AA rules and fits a 375 px screen; the form
works with the keyboard alone; screenshots at 375 and 1024 px have ink (and are kept in
``$EQUIP_SCREENSHOTS`` when set, to be looked at).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import (
    click_and_wait,
    open_browser,
    require_webdriver,
    wait_for_next_page,
)
from support.link_secrets import LINK_SECRET
from support.page_checks import check_page as check_widths
from support.service import running_app
from support.signup_data import hosted_campaign, seed_readers, signup_app

from equip_mailer import store
from equip_mailer.signup import tokens
from equip_mailer.signup.catalogue import find_course, register_courses

SECRET = LINK_SECRET.encode()
WIDTHS = (375, 1024)


@pytest.fixture
def browser():
    require_webdriver()
    driver = open_browser(1024, 900)
    yield driver
    driver.quit()


@pytest.fixture
def site(settings, tmp_path, demo_path):
    engine = store.open_store(settings.database_url)
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(1, 20), action_places=1)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        courses = {
            c: find_course(conn, campaign.id, c) for c in ("equip-basics", "equip-in-action")
        }
    readers = seed_readers(engine, campaign, 3)
    with running_app(signup_app(settings, engine, tmp_path / "outbox")) as base:
        yield base, courses, readers
    engine.dispose()


def check_page(driver, name: str, folder: Path) -> None:
    check_widths(driver, f"signup-{name}", folder, WIDTHS)


def text(driver) -> str:
    return driver.find_element("tag name", "main").text


def test_every_sign_up_page_is_accessible_and_fits_a_phone(browser, site, tmp_path):
    base, courses, readers = site
    basics = courses["equip-basics"]
    page = f"{base}/s/{tokens.signup_token(SECRET, basics.id, readers[0])}"
    browser.get(page)
    check_page(browser, "form", tmp_path)

    click_and_wait(browser, browser.find_element("css selector", "main form button"))
    assert "There is a problem" in text(browser)  # no date chosen
    check_page(browser, "form-errors", tmp_path)
    summary_link = browser.find_element("css selector", ".error-summary a")
    assert summary_link.get_attribute("href").endswith(f"#session-{basics.sessions[0].id}")

    # With the keyboard alone: the first date's radio, then the button.
    from selenium.webdriver.common.keys import Keys

    radio = browser.find_element("id", f"session-{basics.sessions[0].id}")
    radio.send_keys(Keys.SPACE)
    assert radio.is_selected()
    button = browser.find_element("css selector", "main form button")
    old = browser.find_element("tag name", "html")
    button.send_keys(Keys.ENTER)
    wait_for_next_page(browser, old)
    assert "Your place is confirmed" in text(browser)
    check_page(browser, "confirmed", tmp_path)

    browser.get(f"{base}/s/{tokens.signup_token(SECRET, basics.id, readers[1])}")
    assert "Full \u2014 join the waiting list" in text(browser)
    browser.find_element("id", f"session-{basics.sessions[0].id}").click()
    click_and_wait(browser, browser.find_element("css selector", "main form button"))
    assert "waiting list: number 1" in text(browser)
    check_page(browser, "waiting", tmp_path)

    click_and_wait(browser, browser.find_element("css selector", "main form button"))
    assert "You have left the waiting list" in text(browser)
    check_page(browser, "cancelled", tmp_path)

    browser.get(f"{base}/join/2019-04-equip-training/equip-in-action")
    check_page(browser, "open", tmp_path)
    browser.find_element("id", "email").send_keys("someone@example.org")
    click_and_wait(browser, browser.find_element("css selector", "main form button"))
    assert "Check your email" in text(browser)
    check_page(browser, "check-email", tmp_path)

    browser.get(f"{base}/s/not-a-token")
    assert "this link is not valid" in text(browser)


def test_a_form_with_errors_puts_the_keyboard_on_the_error_summary(browser, site):
    """Without script, focus stayed at the top of the page after a press that found errors:
    a keyboard or screen-reader user had to find the summary. It now takes focus as the page
    loads (``autofocus``), so its links to each field are the next Tab."""
    base, courses, readers = site
    basics = courses["equip-basics"]
    browser.get(f"{base}/s/{tokens.signup_token(SECRET, basics.id, readers[2])}")
    click_and_wait(browser, browser.find_element("css selector", "main form button"))
    focused = browser.switch_to.active_element
    assert "error-summary" in (focused.get_attribute("class") or ""), focused.tag_name
