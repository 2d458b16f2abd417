"""The report's tables as files the team opens in Excel: one workbook with a sheet per
table, and a CSV per table.

Text is defused on the way out: a practice named ``=HYPERLINK(...)`` must stay text, not
become a live formula in someone's Excel (OWASP's CSV injection advice), so text that starts
like a formula gets a leading apostrophe and workbook cells are written as strings.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from equip_mailer.compose.cell_values import FORMULA_SIGNS, SKIPPED_FIRST

from .formatting import BLUE, missing, show
from .model import Table

if TYPE_CHECKING:
    from openpyxl import Workbook

# What makes a cell a formula (compose.cell_values, whose ``clean`` takes the apostrophe
# off again when such a file is read back as a list).
FORMULA_START = tuple(FORMULA_SIGNS) + ("\t", "\r", "\x00")


def defuse(value: Any) -> Any:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV
    injection advice); numbers and other values pass unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START) or value.lstrip(SKIPPED_FIRST).startswith(
        tuple(FORMULA_SIGNS)
    ):
        return "'" + value
    return value


def write_csv(table: Table, path: Path) -> Path:
    """UTF-8 with a byte-order mark, so Excel on Windows reads the accents right."""
    frame = _sheet_frame(table, for_csv=True)
    frame.to_csv(
        path,
        index=False,
        header=[defuse(c) for c in frame.columns],  # some are named after the spec's courses
        encoding="utf-8-sig",
        quoting=csv.QUOTE_MINIMAL,
        lineterminator="\r\n",
    )
    return path


def write_xlsx(
    tables: Sequence[Table], path: Path, *, summary: list[tuple[str, str]] | None = None
) -> Path:
    """A sheet per table: bold header, sensible widths, percentages and dates formatted."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    if summary:
        _summary_sheet(wb, summary)
    for table in tables:
        _table_sheet(wb, table)
    wb.save(path)
    return path


def _summary_sheet(wb: Workbook, summary: list[tuple[str, str]]) -> None:
    """A first sheet of label/value pairs: campaign, dates, headline figures, notes."""
    from openpyxl.styles import Alignment, Font

    ws = wb.create_sheet("Summary")
    for r, (label, value) in enumerate(summary, start=1):
        a = ws.cell(row=r, column=1, value=_cell_value(defuse(label)))
        b = ws.cell(row=r, column=2, value=_cell_value(defuse(value)))
        a.data_type = b.data_type = "s"
        a.font = Font(bold=True)
        b.alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = min(40, max(24, *(len(label) + 2 for label, _ in summary)))
    ws.column_dimensions["B"].width = 100


# Excel number formats for the table formats that have one
NUMBER_FORMATS = {
    "pct": "0.0%",
    "int": "#,##0",
    "datetime": "yyyy-mm-dd hh:mm",
    "date": "yyyy-mm-dd",
}


def _table_sheet(wb: Workbook, table: Table) -> None:
    """One table's sheet: blue header row frozen at the top with filter buttons, number
    formats, the total row bold."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(_sheet_title(table.title))
    frame = _sheet_frame(table, for_csv=False)
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor=BLUE.lstrip("#"))
    for c, col in enumerate(frame.columns, start=1):
        cell = ws.cell(row=1, column=c, value=_cell_value(defuse(col)))
        cell.data_type = "s"  # a column named after a course called "=..." stays text
        cell.font, cell.fill = header_font, header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    last = len(frame) + 1
    for r, record in enumerate(frame.itertuples(index=False, name=None), start=2):
        for c, (col, value) in enumerate(zip(frame.columns, record, strict=True), start=1):
            fmt = table.formats.get(col, "text")
            value = _cell_value(value)
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever it starts with
            if fmt in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[fmt]
            if table.total and r == last:
                cell.font = Font(bold=True)
    if frame.empty:  # as the page's "Nothing to show yet", not a bare header
        ws.cell(row=2, column=1, value="None yet.").font = Font(italic=True)
    for c, col in enumerate(frame.columns, start=1):
        fmt = table.formats.get(col, "text")
        longest = max([len(str(col))] + [len(show(v, fmt)) for v in table.frame[col].head(500)])
        ws.column_dimensions[get_column_letter(c)].width = min(60, max(10, longest + 2))
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 30
    # Filter buttons over the header and the data rows; the total row stays out, or sorting
    # by a column would move "All segments" into the middle of the table.
    data_end = last - 1 if table.total and len(frame) else last
    ws.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{data_end}"


def _sheet_frame(table: Table, for_csv: bool) -> pd.DataFrame:
    """The frame with text defused; in CSV, rates become percentages (Excel shows 0.5 as 0.5)."""
    out = {}
    for col in table.frame.columns:
        fmt = table.formats.get(col, "text")
        values = table.frame[col]
        if fmt == "text":
            out[col] = values.astype("object").map(defuse)
        elif fmt == "pct" and for_csv:
            out[f"{col} (%)"] = (values.astype("float64") * 100).round(1)
        elif fmt in ("datetime", "date") and for_csv:
            out[col] = pd.to_datetime(values).dt.strftime(
                "%Y-%m-%d %H:%M" if fmt == "datetime" else "%Y-%m-%d"
            )
        else:
            out[col] = values
    return pd.DataFrame(out, columns=list(out))


def _cell_value(value: Any) -> Any:
    """A frame's value as openpyxl takes it: plain Python numbers and datetimes, None."""
    if missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return xml_safe(value)


def xml_safe(value: Any) -> Any:
    """Text without the control characters XML 1.0 cannot hold: openpyxl refuses the whole
    workbook over one. Other values pass unchanged."""
    return _XML_ILLEGAL.sub("", value) if isinstance(value, str) else value


_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _sheet_title(title: str) -> str:
    """Excel refuses []:*?/\\ in sheet names and more than 31 characters."""
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\")
    return cleaned[:31]
