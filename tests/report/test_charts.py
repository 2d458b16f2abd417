"""Which tables get a chart and how it is shaped: the practice chart sorted by its bars, capped
at the top 15 and saying so."""

from __future__ import annotations

import re

import pandas as pd

from equip_mailer.report.breakdowns import NO_PRACTICE
from equip_mailer.report.charts import _practices_chart


def practices(n: int) -> pd.DataFrame:
    """n practices; practice i has i clickers of 20 delivered, the last no practice at all."""
    names = [f"Practice {i:02d}" for i in range(n - 1)] + [NO_PRACTICE]
    clickers = list(range(n - 1)) + [n]  # the no-practice bar is the longest
    return pd.DataFrame(
        {
            "Practice": names,
            "Delivered": [20] * n,
            "Click-through rate": [c / 20 for c in clickers],
        }
    ).sort_values("Practice")  # as the table lists them, not by rate


def test_the_practice_chart_is_sorted_by_its_bars_and_says_how_many_it_shows():
    chart = _practices_chart(practices(31))
    drawings = re.findall(r"<svg .*?</svg>", chart, re.S)
    # drawn for a desktop page and for a phone (the page's CSS shows one), alike in content
    assert [re.search(r'class="([^"]+)"', svg)[1] for svg in drawings] == ["chart", "chart narrow"]
    for svg in drawings:
        assert 'aria-label="Click-through rate per practice: top 15 of 31"' in svg
        labels = [" ".join(re.findall(r">([^<]+)</tspan>", t)) for t in re.findall(
            r'<text [^>]*class="lbl">(.*?)</text>', svg)]  # fmt: skip
        assert labels[0] == "No practice (citizens and service users)"  # the longest bar first
        assert labels[1:3] == ["Practice 29", "Practice 28"] and len(labels) == 15
        widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
        assert widths == sorted(widths, reverse=True)
    assert "top" not in _practices_chart(practices(15))  # all shown: nothing to say
