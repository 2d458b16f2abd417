"""Reading an Excel workbook as a mailing list: the right sheet, its rows streamed from the
sheet's XML, and limits on what a small file may expand to.

An .xlsx is a zip, so a 1 MB file can hold hundreds of MB of XML: the expanded size is
checked before parsing, and rows are read one at a time (openpyxl's own read-only rows pad
every row to the widest, which a cell far to the right turns into millions of cells).
``list_files.read_table`` calls ``read_xlsx``; the header and the rows are judged there,
as for a CSV.
"""

from __future__ import annotations

import io

from equip_mailer.errors import ListError

from .list_files import Table, find_header, header_rows


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# An XLSX file is a zip: its size says little about what it holds. A 0.9 MB workbook of
# repeated cells expanded to 239 MB of XML (63 s, 1.5 GB through pandas), and a sheet that
# names a cell in column XFD on every row made each row 16,384 cells wide. So the expanded
# size is capped before anything is parsed (zipfile never inflates a member past the size
# its header declares), rows are streamed from the sheet's XML one at a time keeping only
# the cells that hold something, and rows and columns are capped like the CSV's size.
MAX_XLSX_EXPANDED = 100_000_000  # 100,000 rows of 10 columns are about 40 MB of XML
MAX_XLSX_ROWS = 300_000
MAX_XLSX_COLUMNS = 1_000


def _check_expanded_size(data: bytes, shown: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ListError(
            f"could not be opened as an Excel workbook ({exc})",
            where=shown,
            hint="Open it in Excel and save it again as .xlsx or CSV (UTF-8).",
        ) from None
    if expanded > MAX_XLSX_EXPANDED:
        raise ListError(
            f"expands to {expanded / 1_000_000:,.0f} MB of spreadsheet data (at most "
            f"{MAX_XLSX_EXPANDED // 1_000_000} MB, about 250,000 rows, is read): larger than "
            "any mailing list should be",
            where=shown,
            hint="Save only the sheet with the list (File > Save As > CSV UTF-8), or split it.",
        )


def _sheet_records(book: object, sheet: object, shown: str) -> list[tuple[int, list[str]]]:
    """(row number, cells) for each row of ``sheet`` that holds a value, streamed from its
    XML: empty rows, and empty cells past a row's last value, take no memory."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._reader import WorkSheetParser

    # openpyxl's own read-only rows pad every row to the widest one (or the width the sheet
    # claims); its parser gives only the cells written, which is what a list needs.
    records: list[tuple[int, list[str]]] = []
    with sheet._get_source() as source:  # type: ignore[attr-defined]
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,  # type: ignore[attr-defined]
            data_only=True,
            epoch=book.epoch,  # type: ignore[attr-defined]
            date_formats=book._date_formats,  # type: ignore[attr-defined]
            timedelta_formats=book._timedelta_formats,  # type: ignore[attr-defined]
        )
        for number, cells in parser.parse():
            filled = [(c["column"], _cell_text(c["value"])) for c in cells]
            filled = [(col, text) for col, text in filled if text]
            if not filled:
                continue
            width = max(col for col, _ in filled)
            if width > MAX_XLSX_COLUMNS:
                raise ListError(
                    f"row {number} has a value in column {get_column_letter(width)}; a list "
                    f"has at most {MAX_XLSX_COLUMNS:,} columns",
                    where=f"{shown}:{sheet.title}!row {number}",  # type: ignore[attr-defined]
                    hint="Delete the stray cells far to the right, or save the list as CSV.",
                )
            if len(records) >= MAX_XLSX_ROWS:
                raise ListError(
                    f"has more than {MAX_XLSX_ROWS:,} rows with values, more than any "
                    "mailing list should have",
                    where=f"{shown}:{sheet.title}",  # type: ignore[attr-defined]
                    hint="Split the list into several files.",
                )
            row = [""] * width
            for col, text in filled:
                row[col - 1] = text
            records.append((number, row))
    return records


def read_xlsx(data: bytes, shown: str, need: str, sheet: str | None = None) -> Table:
    """The named sheet, or else the first sheet with a ``need`` column: workbooks often
    open on a notes or summary sheet, and a list is never read from the wrong one silently."""
    import openpyxl

    _check_expanded_size(data, shown)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged workbook fails in many ways inside openpyxl
        raise ListError(
            f"could not be opened as an Excel workbook ({type(exc).__name__}: {str(exc)[:200]})",
            where=shown,
            hint="Open it in Excel and save it again as .xlsx or CSV (UTF-8).",
        ) from None
    try:
        names = [str(ws.title) for ws in book.worksheets]
        if sheet is not None and sheet not in names:
            raise ListError(
                f"has no sheet {sheet!r}; its sheets are: " + ", ".join(repr(n) for n in names),
                where=shown,
                hint="Correct 'sheet:' in this file's entry under 'lists:' in the campaign.",
            )
        looked: list[str] = []
        first_problem: ListError | None = None
        for ws in book.worksheets:
            name = str(ws.title)
            if sheet is not None and name != sheet:
                continue
            records = _records_of(book, ws, shown)
            try:
                h = find_header(records, f"{shown}:{name}" if sheet is None else shown, need)
            except ListError as problem:
                if sheet is not None:
                    raise
                looked.append(name)
                first_problem = first_problem or problem
                continue
            header, taken = header_rows(records, h)
            rows = [cells for _, cells in records[h + taken :]]
            wheres = [f"{shown}:{name}!row {line}" for line, _ in records[h + taken :]]
            return Table(header, rows, wheres, [])
    finally:
        book.close()
    if len(looked) == 1 and first_problem is not None:  # one sheet: say what it holds
        raise ListError(first_problem.message, where=shown, hint=first_problem.hint) from None
    raise ListError(
        f"has no sheet with an {need} column; the sheets looked at: "
        + ", ".join(repr(n) for n in looked),
        where=shown,
        hint="Add the column, or name the sheet in the campaign: "
        f"- {{file: {shown}, sheet: Staff}} under 'lists: files:'.",
    )


def sheets_with_column(data: bytes, shown: str, need: str) -> list[str]:
    """The sheets, in order, that have a ``need`` column. A workbook whose sheet is not
    named is read from the first of them; ``check`` says so when there are more (a "Leavers"
    sheet before "Staff" would otherwise be mailed without a word)."""
    import openpyxl

    _check_expanded_size(data, shown)
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    found = []
    try:
        for ws in book.worksheets:
            try:
                find_header(_records_of(book, ws, shown), shown, need)
            except ListError:
                continue
            found.append(str(ws.title))
    finally:
        book.close()
    return found


def _records_of(book: object, ws: object, shown: str) -> list[tuple[int, list[str]]]:
    try:
        return _sheet_records(book, ws, shown)
    except ListError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged sheet XML
        raise ListError(
            f"sheet {ws.title!r} could not be read ({type(exc).__name__}: "  # type: ignore[attr-defined]
            f"{str(exc)[:200]})",
            where=shown,
            hint="Open it in Excel and save it again as .xlsx or CSV (UTF-8).",
        ) from None
