"""A report's folder: the files ``equip-mailer report`` leaves for the team, and their names.

report.html, report.xlsx (a Summary sheet, then a sheet per table) and a CSV per table;
a comparison writes the same kinds of file, its CSVs named ``compare-<table>.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .model import Report, Table
from .page import render_compare_html, render_html
from .spreadsheets import write_csv, write_xlsx


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.html, report.xlsx and one CSV per table in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    html = out_dir / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    written.append(html)
    tables = list(report.tables.values())
    written.append(write_xlsx(tables, out_dir / "report.xlsx", summary=summary_rows(report)))
    for table in tables:
        written.append(write_csv(table, out_dir / f"{table.key}.csv"))
    return written


def summary_rows(report: Report) -> list[tuple[str, str]]:
    """The workbook's Summary sheet: campaign, subject, dates, headline figures, notes, each
    table's note (the team pages' download writes the same sheet)."""
    summary = [
        ("Campaign", report.campaign_id),
        ("Subject", report.subject or ""),
        ("Dates", report.date_range),
    ]
    summary += [
        (f.label, f"{f.value} ({f.detail})" if f.detail else f.value) for f in report.headline
    ]
    summary += [("Note", n) for n in report.notes]
    # What the page prints under each table (what a column means, a dash, UTC days): the
    # sheets have no room for it, so it goes here, by the sheet's title.
    summary += [(t.title, t.note) for t in report.tables.values() if t.note]
    # Clicks are counted as the store keeps them (UTC); sessions as the trainer meets them.
    summary.append(
        (
            "Times",
            "UTC for clicks (Day, Period start); session starts are London time, as their "
            "header says. London is UTC+1 in summer.",
        )
    )
    return summary


def write_comparison(
    reports: Sequence[Report], tables: dict[str, Table], out_dir: Path
) -> list[Path]:
    """The comparison's report.html, report.xlsx and compare-<table>.csv in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / "report.html"
    html.write_text(render_compare_html(reports, tables), encoding="utf-8")
    # The page shows each table's note under it; in Excel they go on a first sheet, or the
    # two "Signed up" columns (recipients, all routes) are left unexplained.
    summary = [("Campaigns", ", ".join(r.campaign_id for r in reports))]
    summary += [(t.title, t.note) for t in tables.values() if t.note]
    written = [html, write_xlsx(list(tables.values()), out_dir / "report.xlsx", summary=summary)]
    for table in tables.values():
        written.append(write_csv(table, out_dir / f"compare-{table.key}.csv"))
    return written
