"""The hand-made SVG charts: readable by a screen reader, escaped, and honest when empty."""

from __future__ import annotations

import re

import pandas as pd

from equip_mailer.report.charts import hbar_chart, time_chart
from equip_mailer.report.formatting import BLUE


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
