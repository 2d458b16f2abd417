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
