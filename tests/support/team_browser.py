"""The team pages in headless Chromium: every page looked at the way the tests look at it.

``check_page`` runs axe-core's WCAG 2.x A and AA rules and the phone-width check at 375 and
1280 px, takes a full-page screenshot at each width and checks it has ink; the screenshots
land in the test's folder, and in ``$EQUIP_SCREENSHOTS`` when set, to be looked at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from support.axe import axe_violations, describe
from support.browser import click_and_wait, full_page_screenshot, ink_stats, set_width

WIDTHS = (375, 1280)


def check_page(driver, name: str, folder: Path) -> None:
    """axe-core and the phone-width check at both widths, and a screenshot of each."""
    for width in WIDTHS:
        set_width(driver, width)
        violations = axe_violations(driver)
        assert violations == [], f"{name} at {width} px:\n{describe(violations)}"
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert overflow <= 1, f"{name} at {width} px is {overflow} px wider than the screen"
        png = full_page_screenshot(driver, folder / f"{name}-{width}.png")
        stats = ink_stats(png)
        assert stats["width"] == width and stats["ink_share"] > 0.01, (name, width, stats)
    keep = os.environ.get("EQUIP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            shutil.copy(folder / f"{name}-{width}.png", keep)


def submit(driver) -> None:
    """Press the (first) form button in the page's main part and wait for the next page."""
    click_and_wait(driver, driver.find_element("css selector", "main form button[type=submit]"))
