"""report.html, and the comparison's, read on a phone: headless Chromium at 390 x 844 CSS
pixels (device scale 2), as an iPhone shows a page opened from an email attachment.

On a phone the page must not scroll sideways (wide tables scroll inside their own box, their
first column staying put), the heading and the headline figures come first and fit the first
screen, the charts are drawn at a size that reads without zooming (the phone layout, labels
above the bars, not the desktop chart shrunk to half), no two texts of a chart overlap, and
axe-core finds nothing. At desktop width the desktop charts show, at their full size.
Screenshots land in the test's folder, and in ``$EQUIP_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from support.axe import axe_violations, describe
from support.browser import ink_stats, open_browser

from equip_mailer.report.assemble import build_report, compare
from equip_mailer.report.page import render_compare_html, render_html

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
SMALLEST_TEXT_PX = 10.5  # the charts draw 11-13 px text; the desktop charts on a phone, 5-6 px

# Every chart shown, with the size its smallest text is drawn at (CSS px) and any two of
# its texts whose boxes overlap by more than a pixel.
CHARTS_SHOWN = """
const shown = [...document.querySelectorAll('svg.chart')]
  .filter(s => s.getBoundingClientRect().width > 0);
return shown.map(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim());
  const sizes = texts.map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
  const boxes = texts.map(t => t.getBoundingClientRect());
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
        && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1)
      overlaps.push([texts[i].textContent, texts[j].textContent]);
  }
  return {title: svg.getAttribute('aria-label'), narrow: svg.classList.contains('narrow'),
          width: svg.getBoundingClientRect().width, smallest: Math.min(...sizes), overlaps};
});
"""

FIRST_SCREEN = """
const box = e => e.getBoundingClientRect();
return {
  h1: box(document.querySelector('h1')).bottom,
  cards: [...document.querySelectorAll('.card')].map(c => [c.querySelector('.label').textContent,
           box(c).top, box(c).bottom, box(c).left, box(c).right]),
  firstSection: box(document.querySelector('section')).top,
  innerHeight: window.innerHeight,
};
"""


@pytest.fixture(scope="module")
def chromium():
    driver = open_browser()
    yield driver
    driver.quit()


def look(driver, page: Path, metrics: dict, png: Path) -> None:
    """Open ``page`` at ``metrics``' size and keep a screenshot of the whole page."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.get(page.resolve().as_uri())
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    png.write_bytes(base64.b64decode(shot["data"]))
    stats = ink_stats(png)
    assert stats["width"] == metrics["width"] * metrics["deviceScaleFactor"], stats
    assert stats["ink_share"] > 0.01, stats
    keep = os.environ.get("EQUIP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, keep)


def check_phone(driver, name: str) -> list[dict]:
    """What every page must do at 390 px; returns the charts shown, for more checks."""
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth;"
    )
    assert overflow <= 0, f"{name} is {overflow} px wider than a 390 px phone"
    violations = axe_violations(driver)
    assert violations == [], f"{name} on a phone:\n{describe(violations)}"
    wide = driver.execute_script(
        "return [...document.querySelectorAll('.table-wrap')]"
        ".filter(w => w.scrollWidth > w.clientWidth + 1).map(w => w.getAttribute('aria-label'));"
    )
    assert wide, f"{name}: no table is wider than a phone, so nothing checks they scroll in a box"
    charts = driver.execute_script(CHARTS_SHOWN)
    assert charts, f"{name} shows no chart"
    for chart in charts:
        assert chart["smallest"] >= SMALLEST_TEXT_PX, f"{name}: {chart}"
        assert chart["overlaps"] == [], f"{name}: {chart}"
        assert chart["narrow"], f"{name}: the desktop chart {chart['title']!r} on a phone"
    return charts


def check_desktop(driver, name: str) -> None:
    """At 1280 px nothing changed: the desktop charts, full size, and no sideways scroll."""
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"
    )
    for chart in driver.execute_script(CHARTS_SHOWN):
        assert not chart["narrow"] and chart["width"] >= 720, f"{name}: {chart}"
        assert chart["smallest"] >= 11 and chart["overlaps"] == [], f"{name}: {chart}"


def test_report_reads_on_a_phone_without_zooming_or_scrolling_sideways(
    chromium, frames, names, tmp_path
):
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(frames, names)), encoding="utf-8")

    look(chromium, page, PHONE, tmp_path / "report-phone-390.png")
    charts = check_phone(chromium, "report.html")
    # segments, courses, places, the two over-time panels, practices: each in its phone layout
    assert len(charts) == 6
    screen = chromium.execute_script(FIRST_SCREEN)
    assert [c[0] for c in screen["cards"]] == [
        "Sent",
        "Delivered",
        "Unique clickers",
        "Click-through rate",
        "Clicks",
        "Signed up",
    ]
    for label, top, bottom, left, right in screen["cards"]:  # all six in the first screen
        assert screen["h1"] <= top and bottom <= screen["innerHeight"], (label, screen)
        assert 0 <= left and right <= PHONE["width"], (label, screen)
    assert screen["cards"][-1][2] <= screen["firstSection"]  # the figures before any table

    look(chromium, page, DESKTOP, tmp_path / "report-desktop-1280.png")
    check_desktop(chromium, "report.html")


def test_comparison_reads_on_a_phone_without_zooming_or_scrolling_sideways(
    chromium, frames, names, tmp_path
):
    reports = [
        build_report(dataclasses.replace(frames, campaign_id=cid), names)
        for cid in ("2019-04-equip-training", "2019-07-equip-training")
    ]
    page = tmp_path / "compare.html"
    page.write_text(render_compare_html(reports, compare(reports)), encoding="utf-8")

    look(chromium, page, PHONE, tmp_path / "compare-phone-390.png")
    charts = check_phone(chromium, "the comparison")
    assert [c["title"] for c in charts] == [
        "Click-through rate per campaign",
        "Click-through rate per segment, campaign by campaign",
        "Click-through rate per course, campaign by campaign",
    ]
    # the summary comes first: its heading, its chart and the first campaign's row of figures
    first = chromium.execute_script(
        "const s = document.querySelector('section#summary');"
        "return [s.querySelector('h2').getBoundingClientRect().top,"
        " s.querySelector('svg.chart.narrow').getBoundingClientRect().bottom,"
        " s.querySelector('tbody tr').getBoundingClientRect().bottom, window.innerHeight];"
    )
    assert 0 < first[0] < first[1] < first[2] <= first[3], first

    look(chromium, page, DESKTOP, tmp_path / "compare-desktop-1280.png")
    check_desktop(chromium, "the comparison")


@pytest.mark.parametrize("width", [641, 700, 768, 820, 900, 940, 941, 1024])
def test_between_phone_and_desktop_no_chart_is_shrunk_below_readable(
    chromium, frames, names, tmp_path, width
):
    """A tablet held upright or a narrow window: whichever layout a chart is shown in, its
    text is drawn at 10.5 px or more and nothing scrolls sideways."""
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(frames, names)), encoding="utf-8")
    metrics = {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
    look(chromium, page, metrics, tmp_path / f"report-{width}.png")
    assert chromium.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"
    )
    charts = chromium.execute_script(CHARTS_SHOWN)
    assert len(charts) == 6
    for chart in charts:
        assert chart["smallest"] >= SMALLEST_TEXT_PX, f"{width} px: {chart}"
        assert chart["overlaps"] == [], f"{width} px: {chart}"


def test_a_long_campaign_id_and_subject_wrap_on_a_phone(chromium, frames, names, tmp_path):
    """A campaign id may be a long slug with underscores (no place a browser breaks a line)
    and a subject may hold a web address: the header wraps, the page stays a phone wide."""
    frames = dataclasses.replace(
        frames, campaign_id="2019_04_equip_training_for_practice_managers_and_nurses"
    )
    names = dataclasses.replace(
        names, subject="Book now: equip.example.org/courses/2019_autumn_programme_for_managers"
    )
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(frames, names)), encoding="utf-8")
    look(chromium, page, PHONE, tmp_path / "report-long-id-phone-390.png")
    check_phone(chromium, "report.html with a long id")
