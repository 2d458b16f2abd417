"""How a value reads, the same in the HTML page, the terminal and the spreadsheet's column
widths: counts with thousands separators, rates as percentages, a dash for nothing.

Also the NHS colours the page, the charts and the workbook share.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .model import Table

BLUE = "#005EB8"  # NHS blue: bars for human clicks, headings
DARK_BLUE = "#003087"
GREY = "#AEB7BD"  # machine clicks: present but not the story
TEXT = "#212B32"


def missing(value: object) -> bool:
    """None, NA, NaT or NaN: shown as a dash, written as an empty cell."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def show(value: Any, fmt: str, period: str | None = None) -> str:
    """A value as the reader sees it in the HTML and the terminal."""
    if missing(value):
        return "–"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "pct":
        return f"{float(value):.1%}"
    if fmt in ("datetime", "date"):
        when = pd.Timestamp(value)
        if period == "day" or fmt == "date":
            return f"{when:%a} {when.day} {when:%b %Y}"
        return f"{when:%a} {when.day} {when:%b %H:%M}"
    return str(value)


def rows_for_display(table: Table) -> list[list[tuple[str, str]]]:
    """Each cell as (text, css class); numbers right-aligned."""
    frame = table.frame
    periods = frame["Period"].tolist() if "Period" in frame.columns else [None] * len(frame)
    rows = []
    for i, record in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for col, value in zip(frame.columns, record, strict=True):
            fmt = table.formats.get(col, "text")
            cells.append((show(value, fmt, periods[i]), "num" if fmt in ("int", "pct") else ""))
        rows.append(cells)
    return rows
