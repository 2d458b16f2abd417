"""Each segment's email, as a reader's copy, in headless Chromium at a phone's width and a
desktop's: axe-core finds no WCAG A/AA violation, nothing runs off a phone's screen, and the
hidden preheader takes no space and shows no text."""

from __future__ import annotations

import pytest
from support.axe import axe_violations, describe
from support.browser import open_browser, overflows_horizontally, set_width
from support.rendering import plain_urls, reader

from equip_mailer.compose.render.personalisation import personalise, recipient_values

SEGMENTS = ["getting-started", "ready-for-action", "project-leads"]


@pytest.fixture(scope="module")
def browser():
    driver = open_browser()
    yield driver
    driver.quit()


@pytest.mark.parametrize("segment", SEGMENTS)
def test_each_segment_reads_well_on_a_phone_and_a_desktop(rendered, browser, segment, tmp_path):
    mail = rendered[segment]
    values = recipient_values(mail, reader(), plain_urls(mail), "https://equip.example.org/u/TOKEN")
    html, _ = personalise(mail, values)
    page = tmp_path / f"{segment}.html"
    page.write_text(html, encoding="utf-8")
    for width in (375, 1024):
        set_width(browser, width)
        browser.get(page.as_uri())
        violations = axe_violations(browser)
        assert violations == [], f"{segment} at {width}px:\n{describe(violations)}"
        assert not overflows_horizontally(browser), f"{segment} at {width}px"
        preheader = browser.find_element("css selector", ".eq-preheader")
        assert not preheader.is_displayed() and preheader.size["height"] == 0
        heading = browser.find_element("css selector", "h1")
        assert heading.is_displayed() and heading.location["y"] < 120
