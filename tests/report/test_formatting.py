"""One way to show a value, shared by the page, the terminal and the workbook's widths."""

from __future__ import annotations

import pandas as pd

from equip_mailer.report.formatting import rows_for_display, show
from equip_mailer.report.model import Table


def test_show_counts_rates_dates_and_nothing():
    assert show(1234, "int") == "1,234"
    assert show(0.5, "pct") == "50.0%"
    assert show(float("nan"), "pct") == "–"  # nothing to divide by
    assert show(None, "int") == "–"
    assert show(pd.Timestamp("2019-04-22 10:00"), "datetime", "hour") == "Mon 22 Apr 10:00"
    assert show(pd.Timestamp("2019-04-30"), "datetime", "day") == "Tue 30 Apr 2019"
    assert show(pd.Timestamp("2019-04-22"), "date") == "Mon 22 Apr 2019"
    assert show("Practice A", "text") == "Practice A"


def test_rows_for_display_right_aligns_numbers_only():
    table = Table(
        "t",
        "T",
        pd.DataFrame({"Practice": ["Practice A"], "Clicks": [1200], "Rate": [0.25]}),
        {"Practice": "text", "Clicks": "int", "Rate": "pct"},
    )
    assert rows_for_display(table) == [[("Practice A", ""), ("1,200", "num"), ("25.0%", "num")]]
