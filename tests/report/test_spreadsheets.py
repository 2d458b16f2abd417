"""Spreadsheet files keep text as text: a practice or role that starts like a formula
(``=HYPERLINK(...)``, ``@SUM(...)``) reaches Excel as a string, never as a live formula.
"""

from __future__ import annotations

from openpyxl import load_workbook
from support.report_fixture import (
    at,
    build_hand_computed_store,
    create_campaign,
    insert_events,
    insert_links,
    insert_recipients,
    read_csv,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.files import write_report
from equip_mailer.report.load import load_frames
from equip_mailer.report.spreadsheets import defuse

EVIL = '=HYPERLINK("http://evil.example","x")'


def test_defuse_marks_text_that_starts_like_a_formula():
    assert defuse(EVIL) == "'" + EVIL
    assert [defuse(t) for t in ("+44 20", "-x", "@SUM(1)", "\tx")] == [
        "'+44 20",
        "'-x",
        "'@SUM(1)",
        "'\tx",
    ]
    assert defuse("Practice A") == "Practice A"
    assert defuse(-3) == -3  # numbers are numbers, whatever their sign


def test_formula_injection_is_neutralised_in_csv_and_xlsx(sqlite_url, tmp_path):
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:
        create_campaign(conn, "2019-05-evil", "Evil")
        insert_links(conn, "2019-05-evil", id_offset=200)
        insert_recipients(
            conn,
            [(1, "getting-started", EVIL, "@SUM(1+1)", "sent")],
            campaign_id="2019-05-evil",
            id_offset=200,
        )
        conn.execute(
            __import__("equip_mailer")
            .store.ledger.update()
            .where(__import__("equip_mailer").store.ledger.c.id == 201)
            .values(first_name=EVIL)
        )
        insert_events(conn, [("click", at(5, 1, 9), 201, 201, None)], campaign_id="2019-05-evil")
    out = tmp_path / "evil"
    written = write_report(build_report(load_frames(engine, "2019-05-evil")), out)
    assert {"report.html", "report.xlsx", "practices.csv", "roles.csv"} <= {p.name for p in written}
    practices = read_csv(out / "practices.csv")
    assert practices[1][0] == "'" + EVIL
    assert read_csv(out / "roles.csv")[1][0] == "'@SUM(1+1)"
    ws = load_workbook(out / "report.xlsx")["Clicks per practice"]
    assert ws["A2"].value == "'" + EVIL and ws["A2"].data_type == "s"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in html  # shown as text, escaped
    assert 'href="http://evil' not in html
    assert "Person" not in html and "Person" not in (out / "practices.csv").read_text("utf-8-sig")


def test_defuse_knows_full_width_signs_and_what_spreadsheets_skip_first():
    """Found in review: ＝ ＋ － ＠ (full width) and a leading NUL passed as plain text."""
    for text in ("＝HYPERLINK(1)", "＋44 20", "－x", "＠SUM(1)", "\x00=SUM(1)", " =SUM(1)", "\n=1"):
        assert defuse(text) == "'" + text, repr(text)
    assert defuse("Practice ＝ A") == "Practice ＝ A"


def test_full_width_and_nul_formulas_stay_text_in_the_csv_and_xlsx(tmp_path):
    import pandas as pd

    from equip_mailer.report.model import Table
    from equip_mailer.report.spreadsheets import write_csv, write_xlsx

    frame = pd.DataFrame({"Practice": ['＝HYPERLINK("http://evil.example")', "\x00=1+1", "A"]})
    table = Table(key="practices", title="Practices", frame=frame, formats={"Practice": "text"})
    text = write_csv(table, tmp_path / "t.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[1:] == ['"\'＝HYPERLINK(""http://evil.example"")"', "'\x00=1+1", "A"]
    sheet = load_workbook(write_xlsx([table], tmp_path / "t.xlsx")).worksheets[0]
    values = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert values[0].startswith("'＝") and values[1].startswith("'")


def test_every_table_sheet_can_be_filtered_and_sorted_without_moving_its_total(
    frames, names, tmp_path
):
    """Found in the audit: the report's sheets had no filter buttons (the rosters do), so
    the team could not sort practices by rate or filter a course. The filter covers the
    header and the data rows, not the total row, which a sort would otherwise move."""
    from equip_mailer.report.assemble import build_report

    path = write_report(build_report(frames, names), tmp_path)[1]
    book = load_workbook(path)
    assert book["Summary"].auto_filter.ref is None  # label/value pairs: nothing to filter
    funnel = book["Funnel per segment"]
    assert funnel.max_row == 5 and funnel["A5"].value == "All segments"
    assert funnel.auto_filter.ref == "A1:L4"  # New to QI ... Running a QI project
    practices = book["Clicks per practice"]
    assert practices.auto_filter.ref == f"A1:G{practices.max_row}"  # no total row


def test_the_places_sheet_has_dates_excel_sorts_as_dates(frames, names, tmp_path):
    """Found in the audit: the places table's Session was the text "Thu 27 Jun 2019", so in
    Excel it sorted Thu before Tue and its filter offered no before/after (the rosters'
    dates were fixed the same way). It is a date cell; the CSV spells it as the rosters do,
    and the page still reads "Thu 27 Jun 2019"."""
    import datetime as dt

    from equip_mailer.report.assemble import build_report
    from equip_mailer.report.formatting import rows_for_display

    report = build_report(frames, names)
    write_report(report, tmp_path)
    sheet = load_workbook(tmp_path / "report.xlsx")["Places per session"]
    assert sheet["B1"].value == "Session"
    assert sheet["B2"].value == dt.datetime(2019, 6, 27) and sheet["B2"].is_date
    assert sheet["B2"].number_format == "yyyy-mm-dd"
    assert read_csv(tmp_path / "places.csv")[1][:3] == ["EQUIP Basics", "2019-06-27", "13:00"]
    assert rows_for_display(report.tables["places"])[0][1] == ("Thu 27 Jun 2019", "")


def test_an_empty_table_sheet_says_none_yet(tmp_path):
    """Found in the audit: a campaign with no clicks yet gave sheets (Clicks per day, Clicks
    over time) with a header row and nothing under it, where the page says "Nothing to show
    yet". The sheet says so in words under its header; the CSV keeps only the header row,
    which is what a program reading it expects."""
    import pandas as pd

    from equip_mailer.report.model import Table
    from equip_mailer.report.spreadsheets import write_csv, write_xlsx

    frame = pd.DataFrame(
        {"Day (UTC)": pd.to_datetime([]), "Human clicks": pd.Series([], dtype="int64")}
    )
    table = Table("days", "Clicks per day", frame, {"Day (UTC)": "date", "Human clicks": "int"})
    sheet = load_workbook(write_xlsx([table], tmp_path / "t.xlsx"))["Clicks per day"]
    assert [c.value for c in sheet[1]] == ["Day (UTC)", "Human clicks"]
    assert sheet["A2"].value == "None yet." and sheet.max_row == 2
    assert read_csv(write_csv(table, tmp_path / "t.csv")) == [["Day (UTC)", "Human clicks"]]


def test_a_column_named_after_a_course_is_text_too(tmp_path):
    """Found in the audit: the segments-by-courses table names its columns after the spec's
    courses, and headers were written as they came: a course called "=Data 101" gave an
    xlsx header cell that openpyxl stored as a formula (Excel offers to repair the file)
    and a CSV header Excel would run. Headers are defused as the cells are."""
    import pandas as pd

    from equip_mailer.report.model import Table
    from equip_mailer.report.spreadsheets import write_csv, write_xlsx

    frame = pd.DataFrame({"Segment": ["New to QI"], "=Data 101 clickers": [3]})
    table = Table("segment_courses", "Segments and courses", frame, {"=Data 101 clickers": "int"})
    sheet = load_workbook(write_xlsx([table], tmp_path / "t.xlsx")).worksheets[0]
    assert sheet["B1"].data_type == "s" and sheet["B1"].value.endswith("=Data 101 clickers")
    assert read_csv(write_csv(table, tmp_path / "t.csv"))[0] == ["Segment", "'=Data 101 clickers"]
