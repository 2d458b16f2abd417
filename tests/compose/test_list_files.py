"""Reading list files as they really arrive (encodings, delimiters, headers, XLSX, stray
quotes, devices): each test writes a real file in tmp_path and reads it as a list."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest
from support.lists import HEADER, write

from equip_mailer.compose.audience import read_list
from equip_mailer.errors import ListError


def test_spreadsheet_export_with_bom_crlf_and_header_variants(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        "\ufeffEmail Address,First name,Surname,Practice name,Job title,QI level\r\n"
        "ann.smith@nhs.example,Ann,Smith,Example Street Surgery,GP,None\r\n"
        "bilal.khan@nhs.example,Bilal,Khan,Sample Road Medical Centre,Practice nurse,Basics\r\n",
    )
    recipients, rejects, rows = read_list(path, "lists/staff.csv")
    assert rejects == []
    assert rows == 2
    ann, bilal = recipients
    assert (ann.email, ann.first_name, ann.last_name, ann.practice, ann.role, ann.qi_level) == (
        "ann.smith@nhs.example",
        "Ann",
        "Smith",
        "Example Street Surgery",
        "GP",
        "none",
    )
    assert bilal.qi_level == "basics"
    assert bilal.source == "lists/staff.csv:3"


@pytest.mark.parametrize(
    "header",
    [
        "E-mail,Forename,Family name,Surgery,Role,QI",
        "EMAIL ADDRESS , FIRST NAME , LAST NAME , PRACTICE , JOB TITLE , QI LEVEL",
        "e_mail,given_name,surname,organisation,position,qi-experience",
    ],
)
def test_header_spellings_map_to_the_same_columns(tmp_path, header):
    path = write(
        tmp_path / "staff.csv", f"{header}\nann@nhs.example,Ann,Smith,Example Surgery,GP,project\n"
    )
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert (ann.first_name, ann.last_name, ann.practice, ann.role, ann.qi_level) == (
        "Ann",
        "Smith",
        "Example Surgery",
        "GP",
        "project",
    )


def test_windows_1252_export_keeps_accented_names(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\r\nzoe@nhs.example,Zoë,Brown,X,GP,none\r\nsian@nhs.example,Siân,Evans,X,GP,none\r\n",
        encoding="cp1252",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert [r.first_name for r in recipients] == ["Zoë", "Siân"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    text = (HEADER + "\n" + 'ann@nhs.example,Ann,Smith,"Surgery, Bow",GP,basics\n').replace(
        ",", delimiter
    )
    text = text.replace(f"Surgery{delimiter} Bow", "Surgery, Bow")
    path = write(tmp_path / "staff.csv", text)
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert ann.practice == "Surgery, Bow"


def test_blank_rows_are_skipped_but_line_numbers_stay_as_in_the_file(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\n\nann@nhs.example,Ann,Smith,X,GP,none\n,,,,,\n\nbob@@nhs.example,Bob,Jones,X,GP,none\n",
    )
    recipients, rejects, rows = read_list(path, "lists/staff.csv")
    assert [r.source for r in recipients] == ["lists/staff.csv:3"]
    assert [str(r) for r in rejects] == [
        'lists/staff.csv:6: email "bob@@nhs.example" is not a valid address'
    ]
    assert rows == 2


def test_a_quoted_line_break_moves_later_lines_down_as_in_an_editor(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER}\r\nann@nhs.example,Ann,Smith,"Example Surgery\r\nUnit 2",GP,none\r\n'
        "bad,B,J,X,GP,none\r\n",
    )
    [ann], [reject], _ = read_list(path, "staff.csv")
    assert ann.practice == "Example Surgery Unit 2"
    assert reject.where == "staff.csv:4"


def test_xlsx_rows_are_named_by_sheet_and_row(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Staff"
    sheet.append(["Email", "First name", "Surname", "Practice", "Role", "QI level"])
    sheet.append(["ann@nhs.example", "Ann", "Smith", "Example Surgery", "GP", "basics"])
    sheet.append([])
    sheet.append(["not-an-address", "Bob", "Jones", "Example Surgery", "GP", 2])
    sheet.append(["cat@nhs.example", "Cat", "Lee", "Example Surgery", "GP", 2])
    book.save(tmp_path / "staff.xlsx")
    recipients, rejects, rows = read_list(tmp_path / "staff.xlsx", "lists/staff.xlsx")
    assert [(r.email, r.qi_level, r.source) for r in recipients] == [
        ("ann@nhs.example", "basics", "lists/staff.xlsx:Staff!row 2"),
        ("cat@nhs.example", "project", "lists/staff.xlsx:Staff!row 5"),
    ]
    assert [str(r) for r in rejects] == [
        'lists/staff.xlsx:Staff!row 4: email "not-an-address" is not a valid address'
    ]
    assert rows == 3


def test_a_two_row_header_of_merged_cells_is_read_as_one_header(tmp_path):
    """ "Email" and "QI level" merged down over two rows, "Name" merged across "First" and
    "Last": the second header row used to be a rejected data row ("email is blank": 1 row
    in 12 is over the 5% that stops a send) and the surnames were lost."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Staff"
    sheet["A1"], sheet["B1"], sheet["D1"] = "Email", "Name", "QI level"
    sheet["B2"], sheet["C2"] = "First", "Last"
    for merged in ("A1:A2", "B1:C1", "D1:D2"):
        sheet.merge_cells(merged)
    for i in range(12):
        sheet.append([f"person{i}@nhs.example", f"First{i}", f"Last{i}", "none"])
    book.save(tmp_path / "staff.xlsx")
    recipients, rejects, rows = read_list(tmp_path / "staff.xlsx", "staff.xlsx")
    assert (rejects, rows) == ([], 12)
    assert (recipients[0].first_name, recipients[0].last_name) == ("First0", "Last0")

    # the same sheet saved as CSV; a row below with a blank address is still a bad row
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,,QI level\n,First,Last,\nann@nhs.example,Ann,Smith,none\n,Bob,Jones,none\n",
    )
    recipients, rejects, rows = read_list(path, "staff.csv")
    assert [(r.first_name, r.last_name) for r in recipients] == [("Ann", "Smith")]
    assert [str(r) for r in rejects] == ["staff.csv:4: email is blank"]


def test_a_first_row_with_a_blank_address_is_data_not_a_second_header(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,,QI level\n,Bob,Jones,\nann@nhs.example,Ann,Smith,none\n",
    )
    recipients, rejects, rows = read_list(path, "staff.csv")
    assert rows == 2 and [r.email for r in recipients] == ["ann@nhs.example"]
    assert str(rejects[0]).startswith("staff.csv:2: email is blank")


def test_xlsx_cells_reading_none_or_na_are_text(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["email", "first_name", "last_name", "qi_level", None, None])
    book.active.append(["ann@nhs.example", "Ann", "NA", "None"])
    book.active.append(["bob@nhs.example", "Bob", "Null", "basics", "", "stray"])
    book.save(tmp_path / "staff.xlsx")
    [ann], [bob], _ = read_list(tmp_path / "staff.xlsx", "staff.xlsx")
    assert (ann.last_name, ann.qi_level) == ("NA", "none")
    assert str(bob) == "staff.xlsx:Sheet!row 3: has values to the right of the last named column"


def test_missing_file_and_missing_email_column_name_the_file(tmp_path):
    with pytest.raises(ListError) as missing:
        read_list(tmp_path / "nope.csv", "lists/nope.csv")
    assert str(missing.value) == "lists/nope.csv: no such file"
    path = write(tmp_path / "staff.csv", "Name,Phone,QI level\nAnn Smith,020 7946 0000,none\n")
    with pytest.raises(ListError) as no_email:
        read_list(path, "lists/staff.csv")
    assert str(no_email.value) == (
        "lists/staff.csv: has no email column; the columns found are: 'Name', 'Phone', 'QI level'"
    )


def test_a_misspelt_list_file_is_met_with_the_nearest_name_in_its_folder(tmp_path):
    write(tmp_path / "lists" / "practice-staff.csv", f"{HEADER}\n")
    write(tmp_path / "lists" / "citizens-and-service-users.csv", f"{HEADER}\n")
    for written in ("practice-staf.csv", "Practice-Staff.csv", "practice-staff.xlsx"):
        with pytest.raises(ListError) as missing:
            read_list(tmp_path / "lists" / written, f"lists/{written}")
        assert str(missing.value) == f"lists/{written}: no such file"
        assert missing.value.hint == (
            "Did you mean lists/practice-staff.csv? "
            "Check the path under 'lists:' in the campaign file."
        )
    with pytest.raises(ListError) as elsewhere:
        read_list(tmp_path / "list" / "practice-staff.csv", "list/practice-staff.csv")
    assert elsewhere.value.hint.startswith("There is no folder list/.")


def test_a_stray_opening_quote_stops_the_file_naming_the_line_and_the_rows_it_swallowed(tmp_path):
    # Before: the quote on line 4 made csv read lines 4-23 as one row; one reject (a
    # 1,000-character first name) out of 3 rows, under the threshold, and 19 people gone.
    rows = [f"p{n}@nhs.example,P{n},Smith,X,GP,none" for n in range(22)]
    rows[2] = 'p2@nhs.example,"P2,Smith,X,GP,none'
    path = write(tmp_path / "staff.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(ListError) as caught:
        read_list(path, "lists/staff.csv")
    assert str(caught.value) == (
        'lists/staff.csv: line 4: an opening quote (") is never closed, '
        "so lines 4-23 were read as one row; fix the quote"
    )


def test_a_stray_quote_closed_by_a_later_quoted_value_still_names_the_swallowed_lines(tmp_path):
    rows = [f"p{n}@nhs.example,P{n},Smith,X,GP,none" for n in range(10)]
    rows[1] = 'p1@nhs.example,"P1,Smith,X,GP,none'
    rows[6] = 'p6@nhs.example,P6,Smith,"Surgery, Bow",GP,none'
    path = write(tmp_path / "staff.csv", HEADER + "\r\n" + "\r\n".join(rows) + "\r\n")
    with pytest.raises(ListError, match=r"line 3: .* so lines 3-8 were read as one row"):
        read_list(path, "lists/staff.csv")


def test_a_quoted_address_over_several_lines_with_commas_is_still_one_value(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER},address\nann@nhs.example,Ann,Smith,X,GP,none,"Unit 2, Example Street,\n'
        'Bow, London,\nE3 1AA, UK"\nbob@nhs.example,Bob,Jones,X,GP,basics,\n',
    )
    recipients, rejects, rows = read_list(path, "staff.csv")
    assert rejects == []
    assert [r.source for r in recipients] == ["staff.csv:2", "staff.csv:5"]


def test_a_device_or_pipe_given_as_a_list_is_refused_by_name(tmp_path):
    # Before: /dev/zero was read until the process was killed, and a pipe waited forever.
    with pytest.raises(ListError, match=r"^lists/zero\.csv: is not a file \(a device or pipe\)$"):
        read_list(Path("/dev/zero"), "lists/zero.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(ListError, match=r"^lists/pipe\.csv: is not a file"):
        read_list(fifo, "lists/pipe.csv")


def test_a_list_over_200_mb_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:  # sparse: takes no disk space
        f.write(f"{HEADER}\n".encode())
        f.truncate(200_000_001)
    with pytest.raises(ListError, match=r"^lists/huge\.csv: is over 200 MB"):
        read_list(path, "lists/huge.csv")


def practice_workbook(path: Path) -> Path:
    """A practice workbook as it arrives: a notes sheet first, the staff on the second, the
    trainers (another list) on the third."""
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["Staff list for the EQUIP newsletter, exported 01/04/2019"])
    staff = book.create_sheet("Staff")
    staff.append(["Email", "First name", "QI level"])
    staff.append(["ann@nhs.example", "Ann", "basics"])
    trainers = book.create_sheet("Trainers")
    trainers.append(["Email", "First name", "QI level"])
    trainers.append(["tom@nhs.example", "Tom", "project"])
    book.save(path)
    return path


def test_a_workbook_is_read_from_its_first_sheet_with_an_email_column(tmp_path):
    path = practice_workbook(tmp_path / "staff.xlsx")
    [ann], _, _ = read_list(path, "lists/staff.xlsx")
    assert (ann.email, ann.source) == ("ann@nhs.example", "lists/staff.xlsx:Staff!row 2")
    [tom], _, _ = read_list(path, "lists/staff.xlsx", sheet="Trainers")
    assert (tom.email, tom.source) == ("tom@nhs.example", "lists/staff.xlsx:Trainers!row 2")


def test_sheet_errors_name_the_sheets(tmp_path):
    path = practice_workbook(tmp_path / "staff.xlsx")
    with pytest.raises(ListError) as missing:
        read_list(path, "lists/staff.xlsx", sheet="staff list")
    assert str(missing.value).startswith(
        "lists/staff.xlsx: has no sheet 'staff list'; its sheets are: 'Read me', 'Staff', "
        "'Trainers'"
    )
    with pytest.raises(ListError) as no_email:
        read_list(path, "lists/staff.xlsx", sheet="Read me")
    assert str(no_email.value).startswith("lists/staff.xlsx: has no email column")
    book = openpyxl.Workbook()
    book.active.title = "Read me"
    book.active.append(["Exported 01/04/2019"])
    book.create_sheet("Summary").append(["Practice", "Staff"])
    book.save(tmp_path / "notes.xlsx")
    with pytest.raises(ListError) as nowhere:
        read_list(tmp_path / "notes.xlsx", "lists/notes.xlsx")
    assert str(nowhere.value).startswith(
        "lists/notes.xlsx: has no sheet with an email column; the sheets looked at: "
        "'Read me', 'Summary'"
    )
    csv = write(tmp_path / "staff.csv", f"{HEADER}\nann@nhs.example,Ann,S,X,GP,none\n")
    with pytest.raises(ListError, match="is a CSV file, which has no sheets"):
        read_list(csv, "lists/staff.csv", sheet="Staff")


def _workbook_with_sheet_xml(path: Path, rows_xml: bytes, dimension: str = "A1:F2") -> Path:
    """A real workbook (saved by openpyxl) whose first sheet's rows are ``rows_xml``: how a
    hostile or broken file differs from a list is all in the sheet's XML."""
    import zipfile

    openpyxl.Workbook().save(path)
    with zipfile.ZipFile(path) as original:
        parts = {name: original.read(name) for name in original.namelist()}
    parts["xl/worksheets/sheet1.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<dimension ref="' + dimension.encode() + b'"/><sheetData>' + rows_xml + b"</sheetData>"
        b"</worksheet>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as rebuilt:
        for name, data in parts.items():
            rebuilt.writestr(name, data)
    return path


def _cell(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


HEADER_ROW = (
    b'<row r="1">'
    + _cell("A1", "email")
    + _cell("B1", "first_name")
    + _cell("C1", "QI level")
    + b"</row>"
)


def test_an_xlsx_that_expands_past_the_cap_is_refused_before_parsing(tmp_path):
    """Found in review: 0.9 MB expanded to 239 MB of XML, 63 s and 1.5 GB."""
    row = b'<row><c t="inlineStr"><is><t>ann@nhs.example</t></is></c></row>'
    path = _workbook_with_sheet_xml(tmp_path / "bomb.xlsx", HEADER_ROW + row * 1_700_000)
    assert path.stat().st_size < 1_000_000  # under 1 MB on disk
    with pytest.raises(ListError) as caught:
        read_list(path, "lists/bomb.xlsx")
    assert str(caught.value).startswith("lists/bomb.xlsx: expands to 1")
    assert "MB of spreadsheet data (at most 100 MB" in str(caught.value)


def test_xlsx_rows_are_streamed_with_only_the_cells_that_hold_values(tmp_path):
    """A sheet claiming the whole grid (A1:XFD1048576), rows far apart and a stray empty
    cell far right: read as the two people in it, at their row numbers."""
    rows = (
        HEADER_ROW
        + b'<row r="2">'
        + _cell("A2", "ann@nhs.example")
        + _cell("B2", "Ann")
        + _cell("C2", "basics")
        + b'<c r="XFD2"/></row>'
        + b'<row r="900000">'
        + _cell("A900000", "bob@nhs.example")
        + _cell("B900000", "Bob")
        + _cell("C900000", "none")
        + b"</row>"
    )
    path = _workbook_with_sheet_xml(tmp_path / "grid.xlsx", rows, dimension="A1:XFD1048576")
    recipients, rejects, count = read_list(path, "staff.xlsx")
    assert [(r.email, r.first_name, r.source) for r in recipients] == [
        ("ann@nhs.example", "Ann", "staff.xlsx:Sheet!row 2"),
        ("bob@nhs.example", "Bob", "staff.xlsx:Sheet!row 900000"),
    ]
    assert rejects == [] and count == 2


def test_a_value_thousands_of_columns_to_the_right_is_refused_with_its_row(tmp_path):
    """Found in review: one cell in column XFD per row made every row 16,384 cells wide
    (a 2.8 MB workbook died with MemoryError)."""
    rows = HEADER_ROW + b"".join(
        f'<row r="{n}">'.encode()
        + _cell(f"A{n}", f"p{n}@nhs.example")
        + _cell(f"XFD{n}", "x")
        + b"</row>"
        for n in range(2, 20_000)
    )
    path = _workbook_with_sheet_xml(tmp_path / "wide.xlsx", rows)
    with pytest.raises(ListError) as caught:
        read_list(path, "lists/wide.xlsx")
    assert str(caught.value) == (
        "lists/wide.xlsx:Sheet!row 2: row 2 has a value in column XFD; a list has at most "
        "1,000 columns"
    )
