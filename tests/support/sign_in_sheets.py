"""Sign-in sheets laid out as the roster contract says (the rosters helper writes them; the
attendance tests write their own), for the people tests."""

from __future__ import annotations

import csv
from pathlib import Path

ROSTER_COLUMNS = (
    "Course, Session, Starts, Name, Email, Practice, Role, QI level, Access needs, Status, "
    "Signed up, Registration, Attended"
).split(", ")
SPEC = "campaigns/2019-04-equip-training.yaml"


def write_roster(path: Path, course, session, people: list[tuple], attended: list[str]) -> Path:
    """One session's roster (CSV or XLSX by suffix) with the Attended column filled in."""
    rows = [
        [
            course.name,
            session.key,
            session.starts_local.strftime("%Y-%m-%d %H:%M"),
            registration.name,
            registration.email,
            registration.practice or "",
            registration.role or "",
            "none",
            "",
            registration.status,
            registration.created_at.strftime("%Y-%m-%d %H:%M"),
            str(registration.id),
            mark,
        ]
        for (registration,), mark in zip(people, attended, strict=True)
    ]
    if path.suffix == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        wb.active.append(ROSTER_COLUMNS)
        for row in rows:
            row[-2] = int(row[-2])  # Excel keeps the id as a number
            wb.active.append(row)
        wb.save(path)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(ROSTER_COLUMNS)
            writer.writerows(rows)
    return path
