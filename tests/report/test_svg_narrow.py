"""The charts' phone layouts: each label above its bar at the chart's full 360 px width, long
labels wrapped (never cut) with the bar under their last line, values beside the label or
under it when both do not fit, legends that wrap, and hour labels spaced out."""

from __future__ import annotations

import math
import re

import pandas as pd

from equip_mailer.report.formatting import BLUE, GREY
from equip_mailer.report.svg import time_chart
from equip_mailer.report.svg_narrow import WIDTH, stacked_bar_chart, stacked_grouped_chart


def labels(svg: str) -> list[tuple[float, list[str]]]:
    """Each label's first baseline and its lines."""
    found = re.findall(r'<text x="0" y="([\d.]+)" text-anchor="start" [^>]*>(.*?)</text>', svg)
    return [(float(y), re.findall(r">([^<]*)</tspan>", spans)) for y, spans in found]


def bars(svg: str) -> list[tuple[float, float, float]]:
    """Each bar's x, y and width."""
    return [
        (float(x), float(y), float(w))
        for x, y, w in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg)
    ]


def test_each_label_sits_above_its_bar_which_spans_the_chart():
    svg = stacked_bar_chart(
        [
            ("New to QI", [(0.4, BLUE)], "40.0%  (72 of 181); 29 signed up"),
            ("Basic QI knowledge", [(0.2, BLUE)], "20.0%  (19 of 95); 10 signed up"),
        ],
        title="Click-through rate per segment",
        scale_max=0.4,
    )
    assert svg.startswith('<svg class="chart narrow" ') and f'viewBox="0 0 {WIDTH} ' in svg
    assert 'aria-label="Click-through rate per segment"' in svg
    (first_y, first), (second_y, second) = labels(svg)
    assert (first, second) == (["New to QI"], ["Basic QI knowledge"])
    (x1, y1, w1), (x2, y2, w2) = bars(svg)
    assert x1 == x2 == 0 and w1 == WIDTH and w2 == WIDTH / 2  # scaled to the largest
    assert first_y < y1 < second_y < y2  # label, its bar, the next label, its bar
    values = re.findall(r'<text x="360" y="([\d.]+)" text-anchor="end" class="val">([^<]*)<', svg)
    assert values == [
        (str(int(first_y)), "40.0%  (72 of 181); 29 signed up"),  # on the label's line
        (str(int(second_y)), "20.0%  (19 of 95); 10 signed up"),
    ]


def test_long_labels_wrap_with_the_bar_under_their_last_line_and_long_values_get_a_line():
    long = "Mile End Example Medical Centre and Walk-in Clinic, Whitechapel Road"
    svg = stacked_bar_chart(
        [
            (long, [(3, BLUE), (1, GREY)], "3 human, 1 machine"),
            (
                "EQUIP Basics: Thu 27 Jun 2019",
                [(4, BLUE)],
                "24 of 30, 3 waiting, and a text too long to share",
            ),
        ],
        title="t",
    )
    (y, lines), (y2, short) = labels(svg)
    assert " ".join(lines) == long and "…" not in svg and len(lines) >= 2
    assert all(len(line) * 6.9 <= WIDTH - 7 * len("3 human, 1 machine") - 10 for line in lines)
    human, machine, other = bars(svg)
    assert human[1] > y + 15 * (len(lines) - 1)  # below the label's last line
    assert machine[0] == human[2] and human[2] == 3 * machine[2]  # stacked on one bar
    value_y = float(re.findall(r'y="([\d.]+)" text-anchor="end" class="val">24 of', svg)[0])
    assert short == ["EQUIP Basics: Thu 27 Jun 2019"] and y2 < value_y < other[1]


def test_campaigns_bars_are_grouped_under_each_name_and_the_legend_wraps():
    ids = ["2019-04-equip-training", "2019-07-equip-training", "2019-10-equip-training"]
    svg = stacked_grouped_chart(
        ["New to QI", "Running a QI project"],
        [(ids[0], [0.4, 0.3]), (ids[1], [0.2, math.nan]), (ids[2], [0.1, 0.0])],
        title="Click-through rate per segment, campaign by campaign",
    )
    assert svg.startswith('<svg class="chart narrow" ')
    (y1, first), (y2, second) = labels(svg)
    assert (first, second) == (["New to QI"], ["Running a QI project"])
    drawn = [b for b in bars(svg) if b[2] != 11]  # the legend's keys are 11 px squares
    assert [round(b[2], 1) for b in drawn] == [308.0, 154.0, 77.0, 231.0]
    assert y1 < drawn[0][1] < drawn[2][1] < y2 < drawn[3][1]
    assert ">–</text>" in svg  # July had no such segment
    assert re.findall(r'class="val">([^<]*)<', svg) == [
        "40.0%",
        "20.0%",
        "10.0%",
        "30.0%",
        "–",
        "0.0%",
    ]
    keys = [b for b in bars(svg) if b[2] == 11]
    assert len(keys) == 3 and len({y for _, y, _ in keys}) == 2  # two ids to a line
    assert all(x + 15 + 7 * len(ids[0]) <= WIDTH for x, _, _ in keys)


def test_phone_timeline_spaces_its_hour_labels_and_names_the_time_zone_in_its_title():
    series = pd.DataFrame(
        {
            "Period start": pd.date_range("2019-04-22 10:00", periods=72, freq="h"),
            "Period": "hour",
            "Human clicks": [5] + [0] * 71,
            "Machine clicks": [2] + [0] * 71,
        }
    )
    title = "First 7 days: clicks per hour"
    svg = time_chart(series, title=title, unit="per hour", width=360, narrow=True)
    assert svg.startswith('<svg class="chart narrow" ')
    assert ">First 7 days: clicks per hour (UTC)</text>" in svg
    assert 'text-anchor="end">clicks per hour' not in svg  # no unit at the right to collide
    hour = r'<text x="([\d.]+)" [^>]*text-anchor="middle">\d\d:\d\d<'
    xs = [float(x) for x in re.findall(hour, svg)]
    assert len(xs) >= 4 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 40
    wide = time_chart(series, title=title, unit="per hour")
    assert len(re.findall(r'text-anchor="middle">\d\d:\d\d<', wide)) == 12  # every 6 hours
