"""The report's HTML page, rendered from the hand-computed store and checked the way people
open it: self-contained, in Chromium (a screenshot with the charts' colours) and printed to
an A4 PDF. ``render_html`` returns the page as a string; writing it is the caller's choice.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.browser import ink_stats, require_chromium, screenshot

from equip_mailer.report.assemble import build_report, compare
from equip_mailer.report.page import render_compare_html, render_html


@pytest.fixture
def page(frames, names, tmp_path) -> Path:
    """The hand-computed campaign's report page, named by the demo spec, saved as a file."""
    path = tmp_path / "report.html"
    path.write_text(render_html(build_report(frames, names)), encoding="utf-8")
    return path


def test_html_is_self_contained_and_prints_on_a4(page):
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(", html)
    assert "@page { size: A4; margin: 15mm; }" in html
    # segments, courses, places, hours of the first week, days after it, practices: each
    # drawn for a desktop page and for a phone (test_page_on_a_phone.py)
    assert html.count('<svg class="chart" ') == 6
    assert html.count('<svg class="chart narrow" ') == 6
    assert "Our latest newsletter (22/04/2019): QI training, wave 3" in html
    assert "22 Apr 2019 to 2 May 2019" in html
    assert "Opens are unreliable" in html


def test_compare_page_says_whom_each_signed_up_counts(frames, names):
    """The comparison's headers and notes tell a segment's sign-ups (its recipients) from a
    course's (every route, the open sign-up page included), as its files and terminal do."""
    april = dataclasses.replace(frames, campaign_id="2019-04")
    july = dataclasses.replace(frames, campaign_id="2019-07")
    reports = [build_report(april, names), build_report(july, names)]
    html = render_compare_html(reports, compare(reports))
    sections = dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, re.S))
    assert sections["summary"].count('scope="col">Signed up (all routes)</th>') == 1
    assert sections["segments"].count('scope="col">Signed up (recipients)</th>') == 2
    assert sections["courses"].count('scope="col">Signed up (all routes)</th>') == 2
    assert ">Signed up</th>" not in html
    assert "it includes people the newsletter was not sent to" in sections["courses"]
    assert "Sign-ups from people not on the campaign&#39;s lists" in sections["segments"]


def test_html_screenshot_in_chromium_is_a_real_page_with_charts(page, tmp_path):
    png = screenshot(page, tmp_path / "report.png", 1000, 2400)
    stats = ink_stats(png)
    assert stats["width"] == 1000
    assert stats["ink_share"] > 0.05, stats  # headings, cards, tables, bars
    assert stats["colours"] > 50, stats  # not a flat page of text
    pixels = np.asarray(Image.open(png).convert("RGB").resize((250, 600)), dtype=int)

    def near(colour):
        return int((np.abs(pixels - np.array(colour)).sum(axis=2) < 30).sum())

    blue = near((0x00, 0x5E, 0xB8))
    grey = near((0xAE, 0xB7, 0xBD))
    assert blue > 200, "NHS-blue bars and headers should show"
    assert grey > 5, "grey machine-click bars should show"


def test_html_prints_to_a4_pdf(page, tmp_path):
    chromium = require_chromium()
    pdf = tmp_path / "report.pdf"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=90,
        )
    data = pdf.read_bytes()
    boxes = set(re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data))
    assert {(round(float(w)), round(float(h))) for w, h in boxes} == {(595, 842)}  # A4 in points
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 6
