"""What lands in a report's folder, and under which names."""

from __future__ import annotations

from equip_mailer.report.assemble import build_report
from equip_mailer.report.files import write_report


def test_a_report_folder_holds_the_page_the_workbook_and_a_csv_per_table(frames, names, tmp_path):
    out = tmp_path / "board-paper"  # created if missing
    written = write_report(build_report(frames, names), out)
    assert [p.name for p in written] == [
        "report.html",
        "report.xlsx",
        "funnel.csv",
        "courses.csv",
        "places.csv",
        "segment_courses.csv",
        "sessions.csv",
        "practices.csv",
        "roles.csv",
        "days.csv",
        "over_time.csv",
        "machine.csv",
    ]
    assert all(p.parent == out and p.stat().st_size > 0 for p in written)


def test_the_workbook_explains_its_tables_as_the_page_does(frames, names, tmp_path):
    """Found in the audit: the page prints each table's note under it (what Offered to and
    Places filled mean, that a dash under Places is no limit, that the days are UTC), but
    report.xlsx dropped them, leaving the same columns unexplained in Excel. They are on
    the Summary sheet, by table title, as the comparison's workbook already has them."""
    from openpyxl import load_workbook

    report = build_report(frames, names)
    write_report(report, tmp_path)
    summary = load_workbook(tmp_path / "report.xlsx")["Summary"]
    explained = dict(summary.iter_rows(values_only=True))
    for table in report.tables.values():
        if table.note:
            assert explained[table.title] == table.note
    assert "UTC" in explained["Clicks over time"]
    assert "no limit" in explained["Places per session"]


def test_the_csvs_with_times_say_they_are_utc(frames, names, tmp_path):
    """Found in the audit: over_time.csv and days.csv gave UTC hours and days under plain
    "Period start" and "Day", and a CSV has no Summary sheet to say so: in summer a team in
    London read a 09:00 click as 09:00 when it came at 10:00. The headers say UTC, as the
    places table's "Starts (London)" names its zone."""
    from support.report_fixture import read_csv

    write_report(build_report(frames, names), tmp_path)
    assert read_csv(tmp_path / "over_time.csv")[0][0] == "Period start (UTC)"
    assert read_csv(tmp_path / "days.csv")[0][0] == "Day (UTC)"


def test_the_summary_labels_are_not_cut_off(frames, names, tmp_path):
    """The Summary's first column was 24 characters wide, so a label such as "Clicks and
    sign-ups per course" (its table's note) was cut off by the value beside it."""
    from openpyxl import load_workbook

    write_report(build_report(frames, names), tmp_path)
    summary = load_workbook(tmp_path / "report.xlsx")["Summary"]
    longest = max(len(str(c.value)) for c in summary["A"])
    assert longest >= len("Clicks and sign-ups per course")
    assert summary.column_dimensions["A"].width >= longest
