"""The team pages in headless Chromium: every page looked at the way the tests look at it.

``check_page`` is ``support.page_checks.check_page`` at the team pages' widths, 375 and
1280 px.
"""

from __future__ import annotations

from pathlib import Path

from support.browser import click_and_wait
from support.page_checks import check_page as check_widths

WIDTHS = (375, 1280)


def check_page(driver, name: str, folder: Path) -> None:
    """axe-core and the phone-width check at both widths, and a screenshot of each."""
    check_widths(driver, name, folder, WIDTHS)


def submit(driver) -> None:
    """Press the (first) form button in the page's main part and wait for the next page."""
    click_and_wait(driver, driver.find_element("css selector", "main form button[type=submit]"))
