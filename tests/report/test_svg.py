"""The SVG drawing: bars scaled to the largest, labels escaped and wrapped (never cut),
and a timeline that reads even when every click falls in one hour."""

from __future__ import annotations

import re

import pandas as pd

from equip_mailer.report.formatting import BLUE
from equip_mailer.report.svg import hbar_chart, time_chart, wrap_label


def test_bars_are_scaled_to_the_largest_and_labels_are_escaped():
    svg = hbar_chart(
        [("<b>Practice A</b>", [(1, BLUE)], "1 click"), ("Practice B", [(2, BLUE)], "2 clicks")],
        title="Clicks per practice",
    )
    assert 'role="img" aria-label="Clicks per practice"' in svg
    assert "&lt;b&gt;Practice A&lt;/b&gt;" in svg and "<b>" not in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 2 and widths[1] == 2 * widths[0]


def test_a_period_without_clicks_says_so_instead_of_drawing_nothing():
    series = pd.DataFrame(
        {
            "Period start": pd.date_range("2019-04-22 10:00", periods=3, freq="h"),
            "Period": "hour",
            "Human clicks": 0,
            "Machine clicks": 0,
        }
    )
    svg = time_chart(series, title="First 7 days: clicks per hour", unit="per hour")
    assert "No clicks yet" in svg and "<rect" in svg and svg.endswith("</svg>")


def test_long_labels_wrap_onto_more_lines_and_are_never_cut():
    long = "Mile End Example Medical Centre and Walk-in Clinic, Whitechapel Road"
    svg = hbar_chart([(long, [(1, BLUE)], "1 click"), ("Short", [(1, BLUE)], "1")], title="t")
    lines = re.findall(r"<tspan [^>]*>([^<]*)</tspan>", svg)
    assert "…" not in svg and " ".join(lines[:-1]) == long
    assert len(lines) >= 3 and all(len(line) <= 28 for line in lines)
    assert wrap_label("Hall-Jones-Featherstonehaugh-Smythe", 130) == [
        "Hall-Jones-",
        "Featherstonehaugh-",
        "Smythe",
    ]


def test_clicks_within_one_hour_still_read_as_a_day_with_named_hours():
    series = pd.DataFrame(
        {
            "Period start": pd.date_range("2019-04-22 10:00", periods=24, freq="h"),
            "Period": "hour",
            "Human clicks": [5] + [0] * 23,
            "Machine clicks": [2] + [0] * 23,
        }
    )
    svg = time_chart(series, title="First 7 days: clicks per hour", unit="per hour")
    assert [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)][0] < 36
    hours = re.findall(r'text-anchor="middle">(\d\d:\d\d)</text>', svg)
    assert hours == ["12:00", "15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00"]
    assert "22 Apr" in svg and "23 Apr" in svg
