"""A page looked at the way the tests look at every page people use: axe-core's WCAG 2.x A
and AA rules, nothing wider than the screen, and a full-page screenshot with ink at each
width. Screenshots land in the test's folder, and in ``$EQUIP_SCREENSHOTS`` when set, to be
looked at. The sign-up pages and the team pages both use it, each with its own widths.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from support.axe import axe_violations, describe
from support.browser import full_page_screenshot, ink_stats, set_width


def check_page(driver, name: str, folder: Path, widths: Sequence[int]) -> None:
    """axe-core and the phone-width check at each width, and a screenshot of each."""
    for width in widths:
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
        for width in widths:
            shutil.copy(folder / f"{name}-{width}.png", keep)
